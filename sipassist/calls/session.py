"""An answered call as the voice pipeline sees it: play into it, listen to it, watch its events."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..telephony.bridge import CallAudio, Playback
from ..telephony.events import CALL_CLOSED, CALL_DTMF_START, TRANSFER_FAILED, BaresipEvent
from ..telephony.switchboard import LinkLost, PhoneCall
from ..config import ListenSettings
from ..voice.echo import ANALYSIS_BLOCKS as ECHO_ANALYSIS_BLOCKS, EchoCanceller
from ..voice.turn import turn_model
from ..voice.vad import Endpointer, Utterance
from .model import COMPLETED, FAILED, TRANSFERRED

POLL_SECONDS = 0.02  # one audio frame: how often waits look at call events


class CallEnded(Exception):
    """The far end hung up, or the link to baresip/jackd was lost."""

    def __init__(self, reason: str, lost: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.lost = lost


@dataclass(frozen=True)
class KeyPress:
    digit: str


class Transfer:
    """A blind transfer asked for by the API: done once the call closed (transferred) or
    baresip reported TRANSFER_FAILED (the call goes on)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.done = threading.Event()
        self.succeeded = False
        self.error: str | None = None


class CallSession:
    def __init__(self, call_id: str, call: PhoneCall, audio: CallAudio) -> None:
        self.call_id = call_id
        self.call = call
        self.audio = audio
        self.echo = EchoCanceller(audio.sample_rate)
        self.started = time.monotonic()
        self.caller_speaking = False  # set while listening: API work yields (voice/gate.py)
        self._digits: deque[str] = deque()
        self._ended: CallEnded | None = None
        self._lock = threading.Lock()
        self.transfer: Transfer | None = None
        self.controlled = False  # the API has acted on this call (/v1/calls/{id}/...)

    @property
    def transferred(self) -> bool:
        return self.transfer is not None and self.transfer.succeeded

    @property
    def ended(self) -> bool:
        return self._ended is not None

    def check(self) -> None:
        """Take pending call events; raise CallEnded once the call is over."""
        with self._lock:
            while self._ended is None:
                event = self.call.next_event(0)
                if event is None:
                    break
                if isinstance(event, LinkLost):
                    self._ended = CallEnded(event.reason, lost=True)
                elif isinstance(event, BaresipEvent):
                    if event.type == CALL_CLOSED:
                        self._ended = CallEnded(event.param or "far end hung up", lost=False)
                        if self.transfer is not None and not self.transfer.done.is_set():
                            self.transfer.succeeded = True  # a REFER's NOTIFY 200 closes it
                            self.transfer.done.set()
                    elif event.type == TRANSFER_FAILED and self.transfer is not None:
                        self.transfer.error = event.param or "the transfer failed"
                        self.transfer.done.set()
                    elif event.type == CALL_DTMF_START and event.param:
                        self._digits.append(event.param[:1])
            if self._ended is not None:
                raise self._ended

    def wait_transfer(self, timeout: float) -> None:
        """While a transfer is pending, keep taking events until its outcome (bounded)."""
        deadline = time.monotonic() + timeout
        while (self.transfer is not None and not self.transfer.done.is_set()
               and time.monotonic() < deadline):
            self.check()
            self.transfer.done.wait(POLL_SECONDS)

    def hold_for_control(self, quiet_seconds: float, limit: float) -> None:
        """A call the API acts on stays up until nothing has played for `quiet_seconds`
        (so a client can speak again after hearing an answer), at most `limit` s."""
        if not self.controlled:
            return
        deadline = time.monotonic() + limit
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            self.check()
            if self.audio.playing:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_seconds:
                return
            time.sleep(POLL_SECONDS)

    def final_fields(self, lost: str | None) -> dict[str, object]:
        """How the call ended, for its record: `lost` is the reason the link was lost, if so.
        A failed transfer leaves the call up, so it ends as usual with the reason noted."""
        if self.transferred:
            return {"status": TRANSFERRED, "transferred_to": self.transfer.uri, "error": None}
        if lost is None and self.transfer is not None and self.transfer.error:
            return {"status": COMPLETED, "error": f"TRANSFER_FAILED: {self.transfer.error}"}
        return {"status": FAILED if lost else COMPLETED, "error": lost}

    def take_digit(self) -> str | None:
        return self._digits.popleft() if self._digits else None

    def enqueue(self, samples: np.ndarray, interrupt: bool = False) -> Playback:
        """Queue audio after whatever is playing (or instead of it); returns at once."""
        return self.audio.play(samples, interrupt)

    def play(self, samples: np.ndarray, stop_on_key: bool = False) -> Playback:
        """Play and wait until done; with stop_on_key a key press cuts it short."""
        return self.wait_played(self.audio.play(samples), stop_on_key)

    def wait_played(self, playback: Playback, stop_on_key: bool = False) -> Playback:
        while not playback.done.wait(POLL_SECONDS):
            self.check()
            if stop_on_key and self._digits:
                self.audio.stop_playback()
                break
        self.check()
        return playback

    def drain_received(self) -> None:
        """Forget audio heard so far (e.g. during our own prompt).

        The last few blocks still go through the echo canceller, so it knows the echo's delay
        and what came just before when listening starts.
        """
        recent: deque = deque(maxlen=ECHO_ANALYSIS_BLOCKS)
        while True:
            try:
                recent.append(self.audio.received.get_nowait())
            except queue.Empty:
                break
        self.echo.forget()
        for heard in recent:
            self.echo.clean(heard.samples, heard.played)

    def listen(self, settings: ListenSettings, sample_rate: int, start_timeout: float,
               endpointer: Endpointer | None = None,
               on_pause: tuple[int, Callable[[Utterance], str]] | None = None,
               ) -> Utterance | KeyPress | None:
        """The next utterance or key press; None if no speech starts within start_timeout.

        An endpointer already in speech (from a barge-in) is continued, not restarted.
        With on_pause = (frames, callback), the callback gets the speech so far each time the
        caller has paused for that many frames, while the endpointer waits to be sure; the
        words it returns tell the endpointer whether they stop mid-sentence (voice/turn.py).
        """
        endpointer = endpointer or Endpointer(settings, sample_rate, turn_model(settings))
        deadline = time.monotonic() + start_timeout
        while True:
            self.check()
            digit = self.take_digit()
            if digit:
                return KeyPress(digit)
            try:
                heard = self.audio.received.get(timeout=POLL_SECONDS)
            except queue.Empty:
                heard = None
            if heard is not None:
                utterance = endpointer.feed(self.echo.clean(heard.samples, heard.played))
                self.caller_speaking = endpointer.in_speech and utterance is None
                if utterance is not None:
                    return utterance
                if on_pause and endpointer.silent_frames == on_pause[0]:
                    endpointer.turn_end.heard(on_pause[1](endpointer.so_far()))
            if not endpointer.in_speech and time.monotonic() > deadline:
                return None

    def barged_in(self, endpointer: Endpointer) -> bool:
        """Feed what the caller said meanwhile; True (and playback stopped) once they speak.

        Our own voice coming back (a speakerphone, a line hybrid) is taken out first, and the
        endpointer wants sustained speech, so neither echo nor a cough interrupts.
        """
        while True:
            try:
                heard = self.audio.received.get_nowait()
            except queue.Empty:
                return False
            endpointer.feed(self.echo.clean(heard.samples, heard.played))
            if endpointer.in_speech:
                self.caller_speaking = True
                self.audio.stop_playback()
                return True
