"""Calls to the assistant: answer, greet, then listen and answer until the caller is done.

The agent of the line called (agents/) greets the caller and answers each turn through the
agent engine (agents/engine.py: tools, knowledge, the LLM), sentence by sentence while the
next one is worked out; this module keeps the voice: listening, endpointing, early ASR, the
filler, and barge-in (the caller talks over the assistant: playback stops and the new
question is taken).
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

import numpy as np

from ..config import Settings
from ..events import Publish, ignore
from ..telephony.bridge import BridgeError
from ..telephony.ctrl import CtrlError
from ..telephony.events import CALL_CLOSED, CALL_ESTABLISHED
from ..telephony.switchboard import LinkLost, PhoneCall, Switchboard
from ..agents.engine import LLM, LLM_FAILED, NO_LLM, Answer, AgentEngine, TurnContext
from ..agents.model import Agent, default_agent
from ..tools.registry import NO_CALLBACK, ToolContext, ToolRegistry
from ..voice.asr import Transcript
from ..voice.confidence import REASK, Doubt, doubt, transcript_text
from ..voice.intents import GOODBYE, recognise
from ..voice.llm import Chat
from ..voice.routing import ToolRouter
from ..voice.turn import turn_model
from ..voice.vad import FRAME_SECONDS, Endpointer, Utterance
from .filler import WithFiller
from .handover import failed_message, hand_over, transfer_asked
from .model import BUSY, COMPLETED, FAILED, IN_PROGRESS, RINGING, CallRecord, iso, utc_now
from .queue import CallQueue
from .runner import ActiveCalls
from .session import CallEnded, CallSession, KeyPress
from .timer_talk import TimerTalk

log = logging.getLogger(__name__)

__all__ = ["LLM_FAILED", "NO_CALLBACK", "NO_LLM", "Dialogue", "InboundCalls"]

FAREWELL = "Goodbye!"
STILL_THERE = "Are you still there?"
ANSWER_TIMEOUT = 5.0  # seconds from accept to an established call

Speak = Callable[[str], np.ndarray]
Transcribe = Callable[[np.ndarray, int], "str | Transcript"]  # details judge confidence


def recognise_goodbye(text: str) -> bool:
    intent = recognise(text)
    return intent is not None and intent.kind == GOODBYE


def caller_extension(uri: str) -> str:
    """"1001" from "sip:1001@pbx.lan;transport=udp"."""
    user = uri.split(":", 1)[-1].split("@", 1)[0]
    return user or uri


class InboundCalls:
    publish: Publish = ignore  # call.incoming, call.answered (the daemon wires it)

    def __init__(self, switchboard: Switchboard, queue: CallQueue, tools: ToolRegistry,
                 speak: Speak, transcribe: Transcribe, chat: Chat | None, settings: Settings,
                 active: ActiveCalls, on_finished: Callable[[CallRecord], None],
                 router: ToolRouter | None = None, engine: AgentEngine | None = None,
                 agent_for_line: Callable[[str | None], Agent] | None = None) -> None:
        self.switchboard = switchboard
        self.queue = queue
        self.tools = tools
        self.speak = speak
        self.transcribe = transcribe
        self.chat = chat
        self.router = router  # the model's tool choice, for what the rules miss
        self.settings = settings
        self.conversation = settings.conversation
        self.rate = settings.audio.sample_rate
        self.active = active
        self.on_finished = on_finished
        self._ids = itertools.count(1)
        self.on_turn: Callable[[str, dict], None] | None = None  # (call_id, turn): metrics
        self.barge_in_settings = replace(settings.listening,
                                         start_frames=settings.conversation.barge_in_frames)
        self.engine = engine or AgentEngine(tools, chat, router)
        # The agent that answers a call to a line (None: the line is not known).
        self.agent_for_line = agent_for_line or (
            lambda line: default_agent(settings, tools.names))

    # -- call handling ------------------------------------------------------------------------

    def handle(self, call: PhoneCall) -> None:
        """Runs on its own thread for each incoming call."""
        now = iso(utc_now())
        record = CallRecord(
            call_id=f"in-{int(time.time())}-{next(self._ids)}",
            extension=caller_extension(call.uri), dial_uri=call.uri, message="", seq=0,
            status=RINGING, queued_at=now, started_at=now, direction="inbound")
        fields = {"CALL_ID": record.call_id, "EXTENSION": record.extension}
        if not self.queue.begin_inbound(record):
            log.info("busy: refusing the call from %s", call.uri, extra=fields)
            self.switchboard.reject(call)
            self.switchboard.finish(call)
            self.queue.record_refused(record.evolve(status=BUSY, completed_at=iso(utc_now())))
            return
        log.info("answering a call from %s", call.uri, extra=fields)
        self.publish("call.incoming", {"call_id": record.call_id, "from": call.uri})
        ending: dict[str, object] = {"status": COMPLETED, "error": None}
        try:
            self._answer(call)
            self.publish("call.answered", {"call_id": record.call_id, "from": call.uri})
            self.queue.update(record.call_id, status=IN_PROGRESS)
            ending = self._converse(record, call)
        except (CtrlError, BridgeError) as exc:
            ending = {"status": FAILED, "error": str(exc)}
        except Exception as exc:  # one call's bug must not take the daemon down
            log.exception("inbound call failed", extra=fields)
            ending = {"status": FAILED, "error": f"internal error: {exc}"}
        finally:
            self.switchboard.finish(call)
            final = self.queue.end_inbound(record.call_id, completed_at=iso(utc_now()),
                                           **ending)
            log.info("call %s ended: %s", final.call_id, final.status, extra=fields)
            self.on_finished(final)

    def _answer(self, call: PhoneCall) -> None:
        self.switchboard.accept(call)
        event = call.wait_for({CALL_ESTABLISHED, CALL_CLOSED}, ANSWER_TIMEOUT)
        if event is None:
            raise CtrlError("the call was not established after answering")
        if isinstance(event, LinkLost):
            raise CtrlError(event.reason)
        if event.type == CALL_CLOSED:
            raise CtrlError(f"the caller hung up before the answer: {event.param}")

    def _converse(self, record: CallRecord, call: PhoneCall) -> dict[str, object]:
        """The dialogue; returns how it ended (status, error: a lost link, ...)."""
        try:
            audio = self.switchboard.bridge.attach(call.baresip_id)
        except BridgeError:
            if call.closed:  # the caller hung up straight after answering
                return {"status": COMPLETED, "error": None}
            raise
        session = CallSession(record.call_id, call, audio)
        self.active.add(session)
        dialogue = Dialogue(self, session, record, self.agent_for_line(call.called))
        log.info("agent %s answers (line %s)", dialogue.agent.id, call.called or "unknown",
                 extra={"CALL_ID": record.call_id})
        self.queue.update(record.call_id, agent_id=dialogue.agent.id)  # its thread's agent
        # Call-backs ring the caller's own extension on our domain, never the From's host.
        dialogue.callback = self.switchboard.trust.callback_extension(call.uri, call.source)
        lost = None
        try:
            dialogue.run()
        except CallEnded as ended:
            lost = ended.reason if ended.lost else None
        finally:
            self.active.remove(session)
            self.switchboard.bridge.detach(audio)
        if not session.ended:
            self.switchboard.hangup(call)
        return session.final_fields(lost)


class Dialogue:
    """One conversation: turns, history and the transcript."""

    def __init__(self, calls: InboundCalls, session: CallSession, record: CallRecord,
                 agent: Agent | None = None) -> None:
        self.calls = calls
        self.agent = agent or calls.agent_for_line(None)
        self.session = session
        self.record = record
        self.transcript: list[dict] = []
        self.history: list[dict[str, str]] = []
        self.deadline = time.monotonic() + calls.conversation.max_call_seconds
        # (speech end, transcript, ms) transcribed during the endpointer's wait, if it holds.
        self._early: tuple[float, str | Transcript, int] | None = None
        self.doubt: Doubt | None = None  # why what was just heard is asked again
        self.answer_tool: str | None = None  # the tool behind the answer being spoken
        self.callback: str | None = None  # the extension a timer may ring (None: no call-back)
        pause = round(calls.conversation.early_asr_seconds / FRAME_SECONDS)
        self.early_asr = (pause, self.transcribe_early) if pause else None
        self.timers = TimerTalk(lambda schedule_id: calls.tools.get("SET_TIMER").scheduler
                                .cancel(schedule_id))  # "no, three minutes" after a timer
        self.last_answer: Answer | None = None  # what the engine did for the last turn
        speed = self.agent.persona.speed  # the agent's own pace; its voice's own at 1
        self.speak = calls.speak if speed == 1.0 else functools.partial(calls.speak, speed=speed)

    def run(self) -> None:
        calls = self.calls
        persona = self.agent.persona
        pending = self.say([persona.greeting])
        asked_still_there = False
        while time.monotonic() < self.deadline:
            heard = self.session.listen(calls.settings.listening, calls.rate,
                                        calls.conversation.idle_seconds, endpointer=pending,
                                        on_pause=self.early_asr)
            pending = None
            if heard is None:
                if asked_still_there:
                    self.say([persona.farewell], interruptible=False)
                    return
                asked_still_there = True
                pending = self.say([STILL_THERE])
                continue
            if isinstance(heard, KeyPress):
                continue
            asked_still_there = False
            text = self.hear(heard)
            if not text:
                continue
            started = time.monotonic()
            if recognise_goodbye(text):
                self.say([persona.farewell], interruptible=False)
                return
            if self.doubt is not None:  # a garbled question is never answered
                pending = self.say([REASK])
                continue
            answer = self.answer(text)
            if calls.conversation.filler_after_seconds > 0 and persona.filler:
                answer = WithFiller(answer, calls.conversation.filler_after_seconds,
                                    persona.filler)
            try:
                pending = self.say(answer, started=started)
            finally:
                if isinstance(answer, WithFiller):
                    answer.close()
            report = self.last_answer.report if self.last_answer is not None else None
            if asked := transfer_asked(report.tool_result if report else None):
                self.last_answer = None  # "Putting you through to ..." has been said
                hand_over(calls.switchboard, self.session, asked[0],  # CallEnded once through
                          calls.settings.calls.hangup_pause_seconds)
                pending = self.say([failed_message(asked[1])])
        self.say(["Sorry, this call has reached its time limit.", persona.farewell],
                 interruptible=False)

    def transcribe_early(self, so_far: Utterance) -> str:
        """The caller paused: transcribe now, while the endpointer makes sure they are done.

        A later pause transcribes again; the utterance ends after one of them, so the last
        one is always the whole of it unless speech ran on to max_utterance_seconds.
        """
        started = time.monotonic()
        result = self.calls.transcribe(so_far.samples, self.calls.rate)
        text = transcript_text(result)[0]
        self._early = (so_far.ended_at, result, round((time.monotonic() - started) * 1000))
        threading.Thread(target=self.prepare, args=(text,), name="prepare", daemon=True).start()
        return text  # words that stop mid-sentence make the endpointer wait longer

    def prepare(self, text: str) -> None:
        """Synthesise the answer to a plain question that has no side effects now, while
        the endpointer still waits: at the endpoint Piper's cache already holds it."""
        spoken = self.calls.engine.prepared(self.agent, text)
        if spoken is not None:
            self.speak(spoken)

    def hear(self, utterance: Utterance) -> str:
        early, self._early = self._early, None
        timings: dict = {}
        if early is not None and early[0] == utterance.ended_at:  # no word since the pause
            result, timings["early_asr_ms"] = early[1], early[2]
        else:
            started = time.monotonic()
            result = self.calls.transcribe(utterance.samples, self.calls.rate)
            timings["asr_ms"] = round((time.monotonic() - started) * 1000)
        text, transcript = transcript_text(result)
        understood = recognise(text) is not None or self.timers.corrects(text)
        self.doubt = doubt(transcript, text, understood)
        sure = {} if transcript is None else {"avg_logprob": transcript.avg_logprob}
        if self.doubt is not None:
            sure["doubt"] = self.doubt.reason
        log.info("caller said %r (%s)", text,
                 ", ".join(f"{k} {v}" for k, v in {**timings, **sure}.items()),
                 extra={"CALL_ID": self.record.call_id})
        if text:
            self.add_turn("caller", text, timings=timings, confidence=sure)
        return text

    def answer(self, text: str) -> Iterator[str]:
        """The sentences that answer `text`, from the agent engine, worked out as they are
        spoken. Sets answer_tool for the transcript; the model's exchanges are history."""
        context = TurnContext(
            tools=ToolContext(conversation=True, caller=self.callback,
                              phone_call=isinstance(self.session, CallSession)),
            timers=self.timers,
            log_fields={"CALL_ID": self.record.call_id})
        answer = self.last_answer = self.calls.engine.answer(self.agent, self.history, text,
                                                             context)
        try:
            for sentence in answer:
                self.answer_tool = answer.report.tool
                yield sentence
        finally:  # also when the caller cut the reply short: what was said is history
            if answer.report.source == LLM:
                self.history += [{"role": "user", "content": text},
                                 {"role": "assistant", "content": answer.report.text}]

    def say(self, sentences: Iterable[str], interruptible: bool = True,
            started: float | None = None) -> Endpointer | None:
        """Speak sentence by sentence as they come; returns the endpointer of a barge-in.

        With `started` (when the answer began to be worked out) the turn records how long the
        first sentence took to decide and to synthesise.
        """
        calls, session = self.calls, self.session
        endpointer = (Endpointer(calls.barge_in_settings, calls.rate,
                                 turn_model(calls.barge_in_settings)) if interruptible else None)
        session.drain_received()
        said, last, timings = [], None, {}
        try:
            for sentence in sentences:
                said.append(sentence)
                decided = time.monotonic()
                audio = self.speak(sentence)
                if started is not None and not timings:
                    timings = {"decide_ms": round((decided - started) * 1000),
                               "tts_first_ms": round((time.monotonic() - decided) * 1000)}
                last = session.enqueue(audio)
                if endpointer and session.barged_in(endpointer):
                    return endpointer
            while last is not None and not last.done.wait(0.02):
                session.check()
                if endpointer and session.barged_in(endpointer):
                    return endpointer
            session.check()
            return None
        finally:
            tool, self.answer_tool = self.answer_tool, None
            if said:
                self.add_turn("assistant", " ".join(said), tool, timings)

    def add_turn(self, who: str, text: str, tool: str | None = None,
                 timings: dict | None = None, confidence: dict | None = None) -> None:
        turn = {"who": who, "text": text, "at": iso(utc_now())}
        if tool:
            turn["tool"] = tool
        if timings:
            turn["timings"] = timings
        if confidence:
            turn["confidence"] = confidence
        self.transcript.append(turn)
        self.calls.queue.update(self.record.call_id, transcript=tuple(self.transcript))
        if self.calls.on_turn is not None:
            self.calls.on_turn(self.record.call_id, turn)
