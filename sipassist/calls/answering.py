"""Listening to who answered an outbound call before the message starts (voice/answering.py)."""

from __future__ import annotations

import logging
import queue
import time

from ..config import CallSettings
from ..voice.answering import AnsweringDetector, Verdict
from .session import POLL_SECONDS, CallSession

log = logging.getLogger(__name__)

# Wall-clock slack over the detector's own bounds (which count audio): if jackd stalls and no
# audio comes, the message still starts.
STALL_SLACK_SECONDS = 2.0


def wait_seconds(settings: CallSettings) -> float:
    """How long an API request for the call waits for detection to decide (human/unknown)."""
    return settings.machine_detection_seconds + STALL_SLACK_SECONDS


def who_answered(session: CallSession, settings: CallSettings, sample_rate: int) -> Verdict:
    """Listen until the message should start; raises CallEnded if the call ends meanwhile."""
    detector = AnsweringDetector(sample_rate, settings.machine_detection_seconds,
                                 settings.machine_beep_seconds)
    limit = time.monotonic() + settings.machine_detection_seconds \
        + settings.machine_beep_seconds + STALL_SLACK_SECONDS
    while time.monotonic() < limit:
        session.check()
        try:
            heard = session.audio.received.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
        verdict = detector.feed(heard.samples)
        if verdict is not None:
            log.info("answered by %s (%s) after %.1f s; message at %.1f s",
                     verdict.answered_by, verdict.reason, verdict.decided_at,
                     verdict.message_at, extra={"CALL_ID": session.call_id})
            return verdict
    log.warning("no audio from the line while telling who answered; playing the message",
                extra={"CALL_ID": session.call_id})
    return Verdict(detector.answered_by or "unknown", detector.now, detector.now, False,
                   "no audio")
