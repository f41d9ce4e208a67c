"""Running one outbound call: synthesise, dial, wait for an answer, speak, hang up."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from ..config import CallSettings
from ..telephony.bridge import BridgeError, CallAudio, Playback
from ..telephony.ctrl import CtrlError
from ..telephony.events import CALL_CLOSED, CALL_ESTABLISHED, BaresipEvent
from ..telephony.switchboard import LinkLost, OutboundCall, Switchboard
from .model import BUSY, COMPLETED, FAILED, IN_PROGRESS, NO_ANSWER, RINGING, CallRecord, iso, utc_now

log = logging.getLogger(__name__)

# SIP final responses that mean "the callee refused", reported as busy rather than failed.
BUSY_MARKERS = ("486", "600", "603", "busy", "decline")
LEAD_IN_SECONDS = 0.3  # the first RTP packets after answer are often lost: start with silence
POLL_SECONDS = 0.05
READY_WAIT_SECONDS = 60


class CallEnded(Exception):
    """The far end hung up, or the link to baresip/jackd was lost, while we were waiting."""

    def __init__(self, reason: str, lost: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.lost = lost


class CallRunner:
    def __init__(self, switchboard: Switchboard, speak: Callable[[str], np.ndarray],
                 settings: CallSettings, sample_rate: int) -> None:
        self.switchboard = switchboard
        self.speak = speak
        self.settings = settings
        self.sample_rate = sample_rate

    def run(self, record: CallRecord, update: Callable[..., CallRecord]) -> CallRecord:
        log_extra = {"CALL_ID": record.call_id, "EXTENSION": record.extension}
        # Synthesise first, so the person who answers does not wait in silence.
        try:
            speech = self.speak(record.message)
        except Exception as exc:
            log.exception("speech synthesis failed", extra=log_extra)
            return update(status=FAILED, completed_at=iso(utc_now()),
                          error=f"speech synthesis failed: {exc}")
        # Telephony may have gone down since the queue handed us the call: wait for it again.
        if not self.switchboard.wait_ready(READY_WAIT_SECONDS):
            return update(status=FAILED, completed_at=iso(utc_now()),
                          error=f"telephony was not available for {READY_WAIT_SECONDS} s")
        record = update(status=RINGING, started_at=iso(utc_now()))
        log.info("dialing %s", record.dial_uri, extra=log_extra)
        try:
            call = self.switchboard.dial(record.dial_uri)
        except CtrlError as exc:
            return update(status=FAILED, completed_at=iso(utc_now()), error=str(exc))
        try:
            outcome = self._ring(call, record.ring_timeout)
            if outcome is not None:
                status, error = outcome
                return update(status=status, completed_at=iso(utc_now()), error=error)
            update(status=IN_PROGRESS)
            played, error = self._converse(call, speech)
            return update(status=FAILED if error else COMPLETED, message_played=played,
                          completed_at=iso(utc_now()), error=error)
        finally:
            self.switchboard.finish(call)

    def _ring(self, call: OutboundCall, ring_timeout: int) -> tuple[str, str | None] | None:
        """None once answered; otherwise the final (status, error)."""
        deadline = time.monotonic() + ring_timeout
        while True:
            event = call.next_event(max(0.0, deadline - time.monotonic()))
            if event is None:
                log.info("no answer within %d s; hanging up", ring_timeout)
                self.switchboard.hangup(call)
                self._wait_closed(call)
                return NO_ANSWER, None
            if isinstance(event, LinkLost):
                return FAILED, event.reason
            if event.type == CALL_ESTABLISHED:
                return None
            if event.type == CALL_CLOSED:
                reason = event.param or "call closed"
                if any(marker in reason.lower() for marker in BUSY_MARKERS):
                    return BUSY, None
                return FAILED, f"call failed: {reason}"

    def _converse(self, call: OutboundCall, speech: np.ndarray) -> tuple[bool, str | None]:
        """Play the message into the answered call; returns (message_played, error)."""
        try:
            audio = self.switchboard.bridge.attach()
        except BridgeError as exc:
            self.switchboard.hangup(call)
            self._wait_closed(call)
            return False, str(exc)
        played = False
        try:
            lead_in = np.zeros(int(LEAD_IN_SECONDS * self.sample_rate), dtype=np.float32)
            audio.play(lead_in)
            self._play(call, audio, speech)
            played = True
            pause = np.zeros(int(self.settings.hangup_pause_seconds * self.sample_rate),
                             dtype=np.float32)
            self._play(call, audio, pause)
        except CallEnded as ended:
            if ended.lost:
                return played, ended.reason
            log.info("the far end hung up%s", "" if played else " during the message")
            return played, None
        finally:
            self.switchboard.bridge.detach(audio)
        self.switchboard.hangup(call)
        self._wait_closed(call)
        return played, None

    def _play(self, call: OutboundCall, audio: CallAudio, samples: np.ndarray) -> Playback:
        """Play and wait until done, watching the call's events meanwhile."""
        playback = audio.play(samples)
        while not playback.done.wait(POLL_SECONDS):
            self._check_still_up(call)
        if playback.interrupted:
            self._check_still_up(call)
        return playback

    def _check_still_up(self, call: OutboundCall) -> None:
        while True:
            event = call.next_event(0)
            if event is None:
                return
            if isinstance(event, LinkLost):
                raise CallEnded(event.reason, lost=True)
            if isinstance(event, BaresipEvent) and event.type == CALL_CLOSED:
                raise CallEnded(event.param or "far end hung up", lost=False)

    def _wait_closed(self, call: OutboundCall, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not call.closed:
            event = call.next_event(max(0.0, deadline - time.monotonic()))
            if event is None:
                log.warning("baresip reported no CALL_CLOSED within %g s", timeout)
                return
            if isinstance(event, LinkLost) or event.type == CALL_CLOSED:
                return
