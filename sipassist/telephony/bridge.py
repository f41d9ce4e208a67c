"""The JACK bridge: moves 20 ms float blocks between baresip's per-call ports and Python.

baresip opens a JACK client per call and direction (`baresip:output_1` carries what the far end
says, `baresip-01:input_1` takes what we send). The bridge keeps one JACK client of its own and,
per call, a pair of ports connected to that call's ports once they appear: which ports are whose
is told by call_ports.PortBook, from the order baresip starts calls' audio.
"""

from __future__ import annotations

import itertools
import logging
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import jack
import numpy as np

from .call_ports import IN, OUT, Moved, PortBook

log = logging.getLogger(__name__)


class BridgeError(RuntimeError):
    """The JACK server or a call's ports are not available."""


class NoJackServer(BridgeError):
    """No JACK server of that name answers."""


@dataclass
class Playback:
    """One piece of audio queued for a call; `done` is set when it has been played or dropped."""

    samples: np.ndarray
    position: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    interrupted: bool = False


@dataclass(frozen=True)
class Heard:
    """One block from the far end, with what we played up to the end of it (echo reference)."""

    samples: np.ndarray
    played: np.ndarray | None  # PLAYED_HISTORY of our output; None when it was all silence


class CallAudio:
    """Audio of one call: queued playback out, received blocks in."""

    RECEIVE_BACKLOG = 1000  # blocks (20 s at 20 ms); older audio is dropped if nobody reads
    PLAYED_HISTORY = 1.0  # seconds of our output kept for echo cancelling (voice/echo.py)

    def __init__(self, name: str, inport: jack.OwnPort, outport: jack.OwnPort,
                 sample_rate: int) -> None:
        self.name = name
        self.sample_rate = sample_rate
        self.inport = inport
        self.outport = outport
        self.received: queue.Queue[Heard] = queue.Queue(self.RECEIVE_BACKLOG)
        self._playlist: deque[Playback] = deque()
        self._playlist_lock = threading.Lock()  # play() vs stop_playback(); never in process()
        self.remote_ports: tuple[str, str] = ("", "")
        self.call_id: str | None = None  # baresip's id of the call, when attached by it
        self._played = np.zeros(int(self.PLAYED_HISTORY * sample_rate), np.float32)
        self._silent_for = len(self._played)  # samples since we last played anything

    def play(self, samples: np.ndarray, interrupt: bool = False) -> Playback:
        """Queue float32 samples at the bridge rate after whatever is already playing; with
        `interrupt`, instead of it (in one step, so nothing queued meanwhile slips between)."""
        item = Playback(np.ascontiguousarray(samples, dtype=np.float32))
        with self._playlist_lock:
            if interrupt:
                dropped, self._playlist = self._playlist, deque([item])
            else:
                dropped = deque()
                self._playlist.append(item)
        for old in list(dropped):
            old.interrupted = True
            old.done.set()
        return item

    def stop_playback(self) -> None:
        """Drop everything queued or playing (barge-in, hangup).

        The playlist is swapped for an empty one rather than emptied in place: the process
        thread works on the list it took at the start of its cycle, so it never sees a list
        shrink under it. The lock only orders play() and stop_playback(); process takes none.
        """
        with self._playlist_lock:
            dropped, self._playlist = self._playlist, deque()
        for item in list(dropped):
            item.interrupted = True
            item.done.set()

    @property
    def playing(self) -> bool:
        return bool(self._playlist)

    def process(self, frames: int) -> None:
        """Runs on JACK's process thread: no locks, no allocation beyond the copies in."""
        out = self.outport.get_array()
        playlist = self._playlist  # one list for the whole cycle (see stop_playback)
        filled = 0
        while filled < frames and playlist:
            try:
                item = playlist[0]
            except IndexError:  # emptied by a stop_playback of an older list
                break
            take = min(frames - filled, len(item.samples) - item.position)
            out[filled : filled + take] = item.samples[item.position : item.position + take]
            item.position += take
            filled += take
            if item.position >= len(item.samples):
                try:
                    if playlist[0] is item:
                        playlist.popleft()
                except IndexError:
                    pass
                item.done.set()
        out[filled:] = 0.0
        self._remember_played(out, filled)
        played = None if self._silent_for >= len(self._played) else self._played.copy()
        heard = Heard(self.inport.get_array().copy(), played)
        try:
            self.received.put_nowait(heard)
        except queue.Full:
            try:
                self.received.get_nowait()
            except queue.Empty:
                pass
            try:
                self.received.put_nowait(heard)
            except queue.Full:  # a reader-side race; the next block will get in
                pass

    def _remember_played(self, out: np.ndarray, filled: int) -> None:
        if filled == 0 and self._silent_for >= len(self._played):
            return  # nothing played lately: the history is silence already
        self._played[:-len(out)] = self._played[len(out):]
        self._played[-len(out):] = out
        self._silent_for = 0 if filled else self._silent_for + len(out)


class JackBridge:
    """One JACK client serving every call."""

    def __init__(self, server: str, sample_rate: int, remote_client: str, client_name: str,
                 on_shutdown: Callable[[], None] = lambda: None) -> None:
        self.server = server
        self.sample_rate = sample_rate
        self.remote_client = remote_client
        self.client_name = client_name
        self.on_shutdown = on_shutdown
        self._client: jack.Client | None = None
        self._calls: tuple[CallAudio, ...] = ()
        self._remote = re.compile(rf"^{re.escape(remote_client)}(-[0-9]+)?:")
        self._book = PortBook()  # under _changed
        self._attached: dict[str, CallAudio] = {}  # call id -> its audio, under _changed
        # Connections to make again (a call's port re-created), off JACK's notification thread.
        self._moves: queue.Queue[Moved | None] = queue.Queue()
        self._mover: threading.Thread | None = None
        self._changed = threading.Condition()
        self._lock = threading.Lock()
        self._shutdown = threading.Event()
        self._names = itertools.count(1)
        self._cycles = 0  # process callbacks run so far
        self.process_errors = 0  # exceptions caught in the process callback
        self.last_process_error = ""
        self.xruns = 0  # JACK cycles missed (callers hear a click): metrics, bench api

    @property
    def alive(self) -> bool:
        return self._client is not None and not self._shutdown.is_set()

    def open(self) -> None:
        try:
            client = jack.Client(self.client_name, no_start_server=True, servername=self.server)
        except jack.JackOpenError as exc:
            raise NoJackServer(f"cannot open JACK server {self.server!r}: {exc}") from None
        if client.samplerate != self.sample_rate:
            client.close()
            raise BridgeError(
                f"JACK server {self.server!r} runs at {client.samplerate} Hz, "
                f"expected {self.sample_rate} Hz"
            )
        self._shutdown.clear()
        client.set_process_callback(self._process)
        client.set_port_registration_callback(self._on_port_change, only_available=False)
        client.set_shutdown_callback(self._on_shutdown)
        client.set_xrun_callback(self._on_xrun)
        with self._changed:
            self._book.reset()
        client.activate()
        client.get_ports()  # lets JACK-Client report unregistrations of ports that exist now
        self._client = client
        if self._mover is None:
            self._mover = threading.Thread(target=self._move_loop, name="jack-ports", daemon=True)
            self._mover.start()

    def close(self) -> None:
        # Under the lock: a call detaching at the same time must not touch a closed client.
        with self._lock:
            client, self._client = self._client, None
            self._calls = ()
        with self._changed:
            self._attached.clear()
        if client is not None:
            try:
                client.deactivate()
                client.close()
            except jack.JackError as exc:
                log.debug("closing JACK client: %s", exc)

    def expect(self, call_id: str) -> None:
        """baresip is starting `call_id`'s audio (told in ctrl_tcp order): its ports come next."""
        with self._changed:
            self._book.expect(call_id)
            self._changed.notify_all()

    def forget(self, call_id: str) -> None:
        """The call ended: its ports, if they never came or are not attached, are no one's."""
        with self._changed:
            if call_id not in self._attached:
                self._book.forget(call_id)

    def attach(self, call_id: str | None = None, timeout: float = 5.0) -> CallAudio:
        """The audio of call `call_id`, once baresip has registered its ports (with no id:
        the oldest ports no call was expecting, for a single far end)."""
        client = self._require_client()
        with self._lock:
            name = f"call{next(self._names)}"
            try:
                inport = client.inports.register(f"{name}_in")
                outport = client.outports.register(f"{name}_out")
            except jack.JackError as exc:  # the server died under us
                raise BridgeError(f"call audio not available: {exc}") from None
            audio = CallAudio(name, inport, outport, self.sample_rate)
            try:
                remote_out, remote_in = self._wait_for_call_ports(call_id, timeout)
                client.connect(remote_out, inport)
                client.connect(outport, remote_in)
            except (BridgeError, jack.JackError) as exc:
                inport.unregister()
                outport.unregister()
                if call_id:
                    self.forget(call_id)
                raise BridgeError(f"call audio not available: {exc}") from None
            audio.remote_ports = (remote_out, remote_in)
            self._calls = (*self._calls, audio)
            if call_id:
                with self._changed:
                    self._attached[call_id] = audio
                    audio.call_id = call_id
        log.debug("bridge %s (%s) <- %s, -> %s", name, call_id, remote_out, remote_in)
        return audio

    def detach(self, audio: CallAudio) -> None:
        audio.stop_playback()
        call_id = getattr(audio, "call_id", None)
        if call_id:
            with self._changed:
                self._attached.pop(call_id, None)
                self._book.forget(call_id)
        with self._lock:
            self._calls = tuple(c for c in self._calls if c is not audio)
            # The process thread may still hold the old tuple: let it finish that cycle before
            # the ports go, or it would read a buffer JACK has already freed.
            self._wait_cycles(2)
            if self._client is not None and not self._shutdown.is_set():
                for port in (audio.inport, audio.outport):
                    try:
                        port.unregister()
                    except jack.JackError:
                        pass

    def _wait_for_call_ports(self, call_id: str | None, timeout: float) -> tuple[str, str]:
        """The names of the call's output and input ports, once registered."""
        def found() -> tuple[str, str] | None:
            return self._book.ports_of(call_id) if call_id else self._book.take_any()

        got: list[tuple[str, str]] = []

        def ready() -> bool:
            if not got and (ports := found()) is not None:
                got.append(ports)
            return bool(got) or self._shutdown.is_set()

        with self._changed:
            self._changed.wait_for(ready, timeout)
        ports = got[0] if got else None
        if self._shutdown.is_set():
            raise BridgeError("JACK server shut down")
        if ports is None:
            raise BridgeError(f"baresip registered no call ports within {timeout:g} s")
        return ports

    def _require_client(self) -> jack.Client:
        if self._client is None or self._shutdown.is_set():
            raise BridgeError("the JACK bridge is not connected")
        return self._client

    def _process(self, frames: int) -> None:
        # JACK-Client never calls a callback that raised again: all call audio would go dead
        # while the bridge looks alive. So nothing escapes; a failure is counted, and logged
        # off this thread by the switchboard's monitor.
        for audio in self._calls:
            try:
                audio.process(frames)
            except Exception as exc:  # noqa: BLE001 (see above)
                self.process_errors += 1
                self.last_process_error = repr(exc)
        self._cycles += 1

    def _wait_cycles(self, count: int, timeout: float = 0.5) -> None:
        target = self._cycles + count
        deadline = time.monotonic() + timeout
        while self._cycles < target and time.monotonic() < deadline and self.alive:
            time.sleep(0.005)

    def _on_port_change(self, port: jack.Port | None, register: bool) -> None:
        """JACK's notification thread, in registration order: book the remote ports."""
        try:
            if port is None or not self._remote.match(port.name):
                return
            is_output = port.is_output
        except jack.JackError:  # gone again before we looked: its unregistration follows
            return
        with self._changed:
            if register:
                moved = self._book.registered(port.name, is_output)
                if moved is not None and moved.call_id in self._attached:
                    self._moves.put(moved)  # JACK forbids connecting from this thread
            else:
                self._book.unregistered(port.name)
            self._changed.notify_all()

    def _move_loop(self) -> None:
        """Connect a call again to its re-created port (a held and resumed call's player)."""
        while True:
            moved = self._moves.get()
            if moved is None:
                return
            with self._changed:
                audio = self._attached.get(moved.call_id)
            client = self._client
            if audio is None or client is None:
                continue
            try:
                if moved.kind == OUT:
                    client.connect(moved.new, audio.inport)
                else:
                    client.connect(audio.outport, moved.new)
            except jack.JackError as exc:
                log.warning("call %s: could not connect its new port %s: %s",
                            moved.call_id, moved.new, exc)
                continue
            ports = list(audio.remote_ports)
            ports[moved.kind] = moved.new
            audio.remote_ports = (ports[OUT], ports[IN])
            log.info("call %s: baresip re-created its port %s as %s; connected again",
                     moved.call_id, moved.old, moved.new)

    def _on_xrun(self, delayed_usecs: float) -> None:
        self.xruns += 1

    def _on_shutdown(self, status: jack.Status, reason: str) -> None:
        """On libjack's thread, which it may end while we are still in here: take no lock
        (a logging handler's lock left held deadlocked every later log call in a full run);
        a thread of ours says so and wakes the waiters."""
        self._shutdown.set()
        threading.Thread(target=self._after_shutdown, args=(reason,), name="jack-shutdown",
                         daemon=True).start()

    def _after_shutdown(self, reason: str) -> None:
        log.error("JACK server shut down: %s", reason)
        with self._changed:
            self._changed.notify_all()
        self.on_shutdown()
