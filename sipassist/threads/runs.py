"""A run: one message into a thread and the agent's answer out, sentence by sentence.

The answering itself is the agent engine's (`Answering`); here is what a thread adds: the
message and the answer kept in the history (a tool's answer as a `tool` message), the model's
context cut to the latest [threads] context_messages, one run at a time per thread, and the
tokens charged to the API key that asked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ..api.limits import Meter
from .model import CALL, Message, Thread
from ..voice.gate import ModelBusy
from .store import ThreadBusy, ThreadNotFound, ThreadStore, ThreadUnavailable

log = logging.getLogger(__name__)

ANSWERED_ROLES = ("user", "tool")  # a run's message; the assistant answers it
SORRY = "Sorry, I can't answer that right now."


@dataclass
class Reply:
    """The answer being worked out: iterate for sentences; the rest is known at the end."""

    sentences: Iterator[str]
    model: str = ""
    tool: str | None = None  # the tool that answered, if one did
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = "stop"


class Answering(Protocol):
    """The agent engine as threads use it."""

    def answer(self, thread: Thread, history: list[dict[str, str]], text: str) -> Reply: ...


def context(history: tuple[Message, ...], keep: int) -> list[dict[str, str]]:
    """The model's view: the latest `keep` messages as {role, content}; a tool's answer reads
    as what the assistant said (small models follow user/assistant turns best)."""
    out = []
    for message in history[-keep:]:
        if message.role == "system":
            continue
        role = "user" if message.role == "user" else "assistant"
        out.append({"role": role, "content": message.content})
    return out


@dataclass
class Run:
    """A started run (message stored, thread claimed): iterate for the answer's sentences."""

    runs: ThreadRuns
    thread: Thread
    message: Message
    reply: Reply | None = None
    meter: Meter | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    started: float = field(default_factory=time.monotonic)
    execution_time: float = 0.0
    said: list[str] = field(default_factory=list)
    _open: bool = True

    def __iter__(self) -> Iterator[str]:
        try:
            self.reply = self.runs.answering.answer(
                self.thread, context(self.thread.history[:-1], self.runs.keep),
                self.message.content)
            for sentence in self.reply.sentences:
                self.said.append(sentence)
                yield sentence
        except ModelBusy as exc:
            if self.said:
                raise
            # Nothing answered: the message is taken back, so a retry does not repeat it.
            self.runs.store.take_back(self.thread.id, self.message)
            raise ThreadUnavailable(exc.detail, {"Retry-After": str(exc.retry_after)}) \
                from None
        except Exception:
            log.exception("thread %s: answering failed", self.thread.id)
            if not self.said:
                self.said.append(SORRY)
                yield SORRY
        finally:
            self.close()

    @property
    def content(self) -> str:
        return " ".join(self.said)

    def close(self) -> None:
        """Keep what was said (also when a stream's client went away) and free the thread."""
        if not self._open:
            return
        self._open = False
        self.execution_time = time.monotonic() - self.started
        reply = self.reply
        try:
            if self.said:
                answer = []
                if reply is not None and reply.tool:
                    answer.append(Message("tool", self.content, name=reply.tool))
                else:
                    answer.append(Message("assistant", self.content))
                self.thread = self.runs.store.append(self.thread.id, answer)
        finally:
            self.runs.store.end_run(self.thread.id)
            if reply is not None and self.meter is not None:
                self.meter.charge(tokens=reply.input_tokens + reply.output_tokens)

    def result(self) -> dict:
        """Seed 001's run response."""
        reply = self.reply or Reply(iter(()))
        return {
            "choices": [{"finish_reason": reply.finish_reason,
                         "message": {"role": "assistant", "content": self.content}}],
            "created": self.created,
            "model": reply.model or self.runs.model,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
            "execution_time": round(self.execution_time, 3),
        }


class ThreadRuns:
    def __init__(self, store: ThreadStore, answering: Answering, context_messages: int,
                 model: str = "", call_active: Callable[[str], bool] = lambda call_id: False,
                 agent_known: Callable[[str], bool] = lambda agent_id: agent_id == "default"
                 ) -> None:
        self.store = store
        self.answering = answering
        self.keep = context_messages
        self.model = model
        self.call_active = call_active  # a call thread is not typed into while the call is on
        self.agent_known = agent_known

    def create(self, agent_id: str, user_id: str, additional_instructions: str = "") -> Thread:
        if not self.agent_known(agent_id):
            raise ThreadNotFound(f"agent '{agent_id}' not found: create it first "
                                 "(POST /v1/agents) or pick one from GET /v1/agents")
        return self.store.create(agent_id, user_id,
                                 additional_instructions=additional_instructions)

    def start(self, thread_id: str, message: Message, meter: Meter | None = None) -> Run:
        """Store the message and claim the thread; refusals are raised here, before any
        answer (so a stream's refusal is a plain HTTP error)."""
        thread = self.store.get(thread_id)
        if not self.agent_known(thread.agent_id):
            raise ThreadNotFound(f"agent '{thread.agent_id}' of thread '{thread_id}' was "
                                 "deleted: start a thread with another agent")
        if thread.channel == CALL and thread.call_id and self.call_active(thread.call_id):
            raise ThreadBusy(f"thread '{thread_id}' is call {thread.call_id}, still in "
                             "progress: continue it by text once the call has ended")
        self.store.begin_run(thread_id)
        try:
            thread = self.store.append(thread_id, [message])
        except Exception:
            self.store.end_run(thread_id)
            raise
        return Run(self, thread, message, meter=meter)
