"""The JACK bridge: moves 20 ms float blocks between baresip's per-call ports and Python.

baresip opens a JACK client per call and direction (`baresip:output_1` carries what the far end
says, `baresip-01:input_1` takes what we send). The bridge keeps one JACK client of its own and,
per call, a pair of ports connected to the call's ports once they appear.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import jack
import numpy as np

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
        # JACK reuses port names and ids from call to call, so each registration of a name gets
        # a generation number; a call claims a port name at the generation it saw.
        self._generations: dict[str, int] = {}
        self._claimed: dict[str, int] = {}
        self._registrations = itertools.count(1)
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
        client.activate()
        client.get_ports()  # lets JACK-Client report unregistrations of ports that exist now
        self._client = client

    def close(self) -> None:
        # Under the lock: a call detaching at the same time must not touch a closed client.
        with self._lock:
            client, self._client = self._client, None
            self._calls = ()
        if client is not None:
            try:
                client.deactivate()
                client.close()
            except jack.JackError as exc:
                log.debug("closing JACK client: %s", exc)

    def attach(self, timeout: float = 5.0) -> CallAudio:
        """Give the newest call's audio, once baresip has registered its ports."""
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
                remote_out, remote_in = self._wait_for_call_ports(client, timeout)
                client.connect(remote_out, inport)
                client.connect(outport, remote_in)
            except (BridgeError, jack.JackError) as exc:
                inport.unregister()
                outport.unregister()
                raise BridgeError(f"call audio not available: {exc}") from None
            audio.remote_ports = (remote_out.name, remote_in.name)
            self._calls = (*self._calls, audio)
        log.debug("bridge %s <- %s, -> %s", name, remote_out.name, remote_in.name)
        return audio

    def detach(self, audio: CallAudio) -> None:
        audio.stop_playback()
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

    def _wait_for_call_ports(self, client: jack.Client, timeout: float) -> tuple[jack.Port, jack.Port]:
        """The first unclaimed baresip output and input ports (a call's two directions)."""
        prefix = self.remote_client

        def unclaimed(is_output: bool) -> jack.Port | None:
            for port in client.get_ports(f"^{prefix}(-[0-9]+)?:", is_audio=True,
                                         is_output=is_output, is_input=not is_output):
                generation = self._generations.get(port.name, 0)
                if generation > self._claimed.get(port.name, 0):
                    return port
            return None

        with self._changed:
            found = self._changed.wait_for(
                lambda: self._shutdown.is_set() or (unclaimed(True) and unclaimed(False)), timeout
            )
        if self._shutdown.is_set():
            raise BridgeError("JACK server shut down")
        if not found:
            raise BridgeError(f"baresip registered no call ports within {timeout:g} s")
        remote_out, remote_in = unclaimed(True), unclaimed(False)
        assert remote_out and remote_in
        with self._changed:
            for port in (remote_out, remote_in):
                self._claimed[port.name] = self._generations[port.name]
        return remote_out, remote_in

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
        with self._changed:
            if register and port is not None:
                self._generations[port.name] = next(self._registrations)
            self._changed.notify_all()

    def _on_xrun(self, delayed_usecs: float) -> None:
        self.xruns += 1

    def _on_shutdown(self, status: jack.Status, reason: str) -> None:
        log.error("JACK server shut down: %s", reason)
        self._shutdown.set()
        with self._changed:
            self._changed.notify_all()
        self.on_shutdown()
