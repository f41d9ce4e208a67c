"""Running one outbound call: synthesise, dial, wait for an answer, speak, ask, hang up."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from ..config import CallSettings, ListenSettings
from ..events import Publish, ignore
from ..telephony.bridge import BridgeError
from ..telephony.ctrl import CtrlError
from ..telephony.events import CALL_CLOSED, CALL_ESTABLISHED
from ..telephony.switchboard import LinkLost, PhoneCall, Switchboard
from ..voice.answering import MACHINE
from ..voice.choice import ChoiceSpec
from ..voice.vad import Utterance
from .answering import wait_seconds, who_answered
from .model import BUSY, COMPLETED, FAILED, IN_PROGRESS, NO_ANSWER, RINGING, CallRecord, iso, utc_now
from .session import CallEnded, CallSession, KeyPress

log = logging.getLogger(__name__)

# SIP final responses that mean "the callee refused", reported as busy rather than failed.
BUSY_MARKERS = ("486", "600", "603", "busy", "decline")
LEAD_IN_SECONDS = 0.3  # the first RTP packets after answer are often lost: start with silence
READY_WAIT_SECONDS = 60
TRANSFER_WAIT_SECONDS = 30  # for the far end to follow a REFER and report how it went
# A call the API speaks into stays up this long after the last audio (then hangs up as usual),
# and at most this long in all after its message.
CONTROL_QUIET_SECONDS = 5.0
CONTROL_HOLD_LIMIT_SECONDS = 600.0
# A choice call that reached an answering machine: the message is left, nobody is asked.
MACHINE_CHOICE_ERROR = "answered by a machine: the message was left, the choice was not asked"
REPROMPT = "Sorry, I didn't catch that."
THANKS = "Thank you."

Speak = Callable[[str], np.ndarray]
Transcribe = Callable[[np.ndarray, int], str]


class ActiveCalls:
    """Answered calls by call_id, for /speak; and ringing ones, for PUT /v1/calls/{id}/hangup."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sessions: dict[str, CallSession] = {}
        self._ringing: dict[str, PhoneCall] = {}
        self._answering: dict[str, float] = {}  # call_id -> when telling who answered ends

    def ringing(self, call_id: str, call: PhoneCall | None) -> None:
        """Note (or, with None, forget) a dialled call not answered yet."""
        with self._cond:
            if call is None:
                self._ringing.pop(call_id, None)
            else:
                self._ringing[call_id] = call
                self._cond.notify_all()

    def ringing_call(self, call_id: str, wait: float = 0.0) -> PhoneCall | None:
        """The dialled call; waits up to `wait` s for one being dialled right now."""
        with self._cond:
            self._cond.wait_for(lambda: call_id in self._ringing, wait)
            return self._ringing.get(call_id)

    def answering(self, call_id: str, seconds: float | None) -> None:
        """Note (or, with None, forget) an answered call whose message waits while we tell a
        person from a machine: get() waits that much longer for it."""
        with self._cond:
            if seconds is None:
                self._answering.pop(call_id, None)
            else:
                self._answering[call_id] = time.monotonic() + seconds

    def add(self, session: CallSession) -> None:
        with self._cond:
            self._sessions[session.call_id] = session
            self._cond.notify_all()

    def remove(self, session: CallSession) -> None:
        with self._cond:
            self._sessions.pop(session.call_id, None)

    def get(self, call_id: str, wait: float = 0.0) -> CallSession | None:
        """The call's session; waits up to `wait` s for one just answered to get its audio."""
        with self._cond:
            wait = max(wait, self._answering.get(call_id, 0.0) - time.monotonic())
            self._cond.wait_for(lambda: call_id in self._sessions, wait)
            return self._sessions.get(call_id)

    def any_speaking(self) -> bool:
        """Some caller is talking now: their turn, and its models, are moments away."""
        with self._cond:
            return any(s.caller_speaking for s in self._sessions.values())

    def latest(self, wait: float = 0.0) -> CallSession | None:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._sessions), wait)
            return max(self._sessions.values(), key=lambda s: s.started, default=None)


class CallRunner:
    publish: Publish = ignore  # call.answered, choice.collected (the daemon wires it)

    def __init__(self, switchboard: Switchboard, speak: Speak, transcribe: Transcribe | None,
                 settings: CallSettings, endpointing: ListenSettings, sample_rate: int,
                 active: ActiveCalls) -> None:
        self.switchboard = switchboard
        self.speak = speak
        self.transcribe = transcribe
        self.settings = settings
        self.endpointing = endpointing
        self.sample_rate = sample_rate
        self.active = active
        # An agent's call converses once answered: (record, session, update) -> None
        # (calls/agent_calls.py; the daemon wires it).
        self.converse: Callable[[CallRecord, CallSession, Callable[..., CallRecord]],
                                None] | None = None

    def run(self, record: CallRecord, update: Callable[..., CallRecord]) -> CallRecord:
        log_extra = {"CALL_ID": record.call_id, "EXTENSION": record.extension}
        # Synthesise first, so the person who answers does not wait in silence.
        try:
            speech = None if record.agent_call else self.speak(record.message)
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
        self.active.ringing(record.call_id, call)
        try:
            outcome = self._ring(call, record.ring_timeout)
            self.active.ringing(record.call_id, None)
            if outcome is not None:
                status, error = outcome
                if update().hangup_by == "api":  # cancelled while ringing
                    status, error = NO_ANSWER, None
                return update(status=status, completed_at=iso(utc_now()), error=error)
            record = update(status=IN_PROGRESS)
            return self._answered(record, call, speech, update)
        finally:
            self.active.ringing(record.call_id, None)
            self.switchboard.finish(call)

    def _ring(self, call: PhoneCall, ring_timeout: int) -> tuple[str, str | None] | None:
        """None once answered; otherwise the final (status, error)."""
        event = call.wait_for({CALL_ESTABLISHED, CALL_CLOSED}, ring_timeout)
        if event is None:
            log.info("no answer within %d s; hanging up", ring_timeout)
            self.switchboard.hangup(call)
            return NO_ANSWER, None
        if isinstance(event, LinkLost):
            return FAILED, event.reason
        if event.type == CALL_ESTABLISHED:
            return None
        reason = event.param or "call closed"
        if any(marker in reason.lower() for marker in BUSY_MARKERS):
            return BUSY, None
        return FAILED, f"call failed: {reason}"

    def _answered(self, record: CallRecord, call: PhoneCall, speech: np.ndarray | None,
                  update: Callable[..., CallRecord]) -> CallRecord:
        try:
            audio = self.switchboard.bridge.attach(call.baresip_id)
        except BridgeError as exc:
            self.switchboard.hangup(call)
            return update(status=FAILED, completed_at=iso(utc_now()), error=str(exc))
        session = CallSession(record.call_id, call, audio)
        error = None
        try:
            if self.settings.machine_detection:  # a person or a machine: calls/answering.py
                self.active.answering(record.call_id, wait_seconds(self.settings))
                verdict = who_answered(session, self.settings, self.sample_rate)
                record = update(answered_by=verdict.answered_by)
            self.publish("call.answered", {**record.webhook_payload(), "direction": "outbound"})
            # The message is queued before the call is offered to /speak, so nothing jumps ahead.
            session.enqueue(self._silence(LEAD_IN_SECONDS))
            message = session.enqueue(speech) if speech is not None else None
            self.active.add(session)
            if message is None:  # an agent's call: it converses
                if self.converse is None:
                    raise CallEnded("agent calls are not wired on this box", lost=True)
                self.converse(record, session, update)
            else:
                session.wait_played(message)
                record = update(message_played=True)
            if record.choice and record.answered_by == MACHINE:
                session.play(self._silence(self.settings.hangup_pause_seconds))
                self.switchboard.hangup(call)
                return update(status=NO_ANSWER, completed_at=iso(utc_now()),
                              error=MACHINE_CHOICE_ERROR)
            if record.choice:
                response, raw_text = self._collect_choice(session,
                                                          ChoiceSpec.from_document(record.choice))
                record = update(choice_response=response, choice_raw_text=raw_text)
                self.publish("choice.collected", record.webhook_payload())
            session.wait_transfer(TRANSFER_WAIT_SECONDS)  # PUT /v1/calls/{id}/route
            session.hold_for_control(CONTROL_QUIET_SECONDS, CONTROL_HOLD_LIMIT_SECONDS)
            session.play(self._silence(self.settings.hangup_pause_seconds))
        except CallEnded as ended:
            if ended.lost:
                error = ended.reason
            else:
                log.info("the far end hung up", extra={"CALL_ID": record.call_id})
        finally:
            self.active.answering(record.call_id, None)
            self.active.remove(session)
            self.switchboard.bridge.detach(audio)
        if not session.ended:
            self.switchboard.hangup(call)
        return update(completed_at=iso(utc_now()), **session.final_fields(error))

    def _collect_choice(self, session: CallSession, spec: ChoiceSpec
                        ) -> tuple[str | None, str | None]:
        """Ask, listen, match; ask once more on no match. Returns (value, raw text)."""
        raw_text = None
        for attempt in range(2):
            prompt = spec.prompt if attempt == 0 else f"{REPROMPT} {spec.prompt}"
            session.play(self.speak(prompt), stop_on_key=True)
            session.drain_received()
            heard = session.listen(self.endpointing, self.sample_rate, spec.timeout_seconds)
            if isinstance(heard, KeyPress):
                raw_text = heard.digit
                option = spec.match_digit(heard.digit)
            elif isinstance(heard, Utterance) and self.transcribe is not None:
                raw_text = self.transcribe(heard.samples, self.sample_rate).strip()
                option = spec.match(raw_text)
                log.info("heard %r -> %s", raw_text, option.value if option else "no match",
                         extra={"CALL_ID": session.call_id})
            else:
                option = None
            if option is not None:
                session.play(self.speak(THANKS))
                return option.value, raw_text
        return None, raw_text

    def _silence(self, seconds: float) -> np.ndarray:
        return np.zeros(int(seconds * self.sample_rate), dtype=np.float32)
