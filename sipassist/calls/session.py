"""An answered call as the voice pipeline sees it: play into it, listen to it, watch its events."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..telephony.bridge import CallAudio, Playback
from ..telephony.events import CALL_CLOSED, CALL_DTMF_START, BaresipEvent
from ..telephony.switchboard import LinkLost, PhoneCall
from ..config import ListenSettings
from ..voice.vad import Endpointer, Utterance

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


class CallSession:
    def __init__(self, call_id: str, call: PhoneCall, audio: CallAudio) -> None:
        self.call_id = call_id
        self.call = call
        self.audio = audio
        self.started = time.monotonic()
        self._digits: deque[str] = deque()
        self._ended: CallEnded | None = None
        self._lock = threading.Lock()

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
                    elif event.type == CALL_DTMF_START and event.param:
                        self._digits.append(event.param[:1])
            if self._ended is not None:
                raise self._ended

    def take_digit(self) -> str | None:
        return self._digits.popleft() if self._digits else None

    def enqueue(self, samples: np.ndarray) -> Playback:
        """Queue audio after whatever is playing; returns at once."""
        return self.audio.play(samples)

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
        """Forget audio heard so far (e.g. during our own prompt)."""
        while True:
            try:
                self.audio.received.get_nowait()
            except queue.Empty:
                return

    def listen(self, settings: ListenSettings, sample_rate: int, start_timeout: float,
               endpointer: Endpointer | None = None) -> Utterance | KeyPress | None:
        """The next utterance or key press; None if no speech starts within start_timeout.

        An endpointer already in speech (from a barge-in) is continued, not restarted.
        """
        endpointer = endpointer or Endpointer(settings, sample_rate)
        deadline = time.monotonic() + start_timeout
        while True:
            self.check()
            digit = self.take_digit()
            if digit:
                return KeyPress(digit)
            try:
                frame = self.audio.received.get(timeout=POLL_SECONDS)
            except queue.Empty:
                frame = None
            if frame is not None:
                utterance = endpointer.feed(frame)
                if utterance is not None:
                    return utterance
            if not endpointer.in_speech and time.monotonic() > deadline:
                return None

    def barged_in(self, endpointer: Endpointer) -> bool:
        """Feed what the caller said meanwhile; True (and playback stopped) once they speak.

        Only the far end's audio arrives here (SIP keeps the directions apart), and the
        endpointer wants sustained speech, so a cough or line noise does not interrupt.
        """
        while True:
            try:
                frame = self.audio.received.get_nowait()
            except queue.Empty:
                return False
            endpointer.feed(frame)
            if endpointer.in_speech:
                self.audio.stop_playback()
                return True
