"""How a thread gets its answers: the agent engine, with the API's place in the model queue."""

from __future__ import annotations

from collections.abc import Iterator

from ..agents.engine import LLM, AgentEngine, TurnContext
from ..agents.store import AgentStore
from ..tools.registry import ToolContext
from ..voice.llm import SYSTEM_PROMPT, Chat
from .model import Thread
from .runs import Reply

# A text has no phone to ring back: a timer says so (as a call from an unknown line would).
TEXT = ToolContext(conversation=True, caller=None)


def estimate_tokens(text: str) -> int:
    """About four characters a token for English text (Qwen's tokenizer, measured ~3.8)."""
    return max(1, round(len(text) / 4)) if text else 0


class EngineAnswering:
    """A thread's turn answered by its agent, through the same engine as a phone call."""

    def __init__(self, engine: AgentEngine, agents: AgentStore, model: str) -> None:
        self.engine = engine
        self.agents = agents
        self.model = model

    def answer(self, thread: Thread, history: list[dict[str, str]], text: str) -> Reply:
        agent = self.agents.get(thread.agent_id)
        answer = self.engine.answer(agent, history, text, TurnContext(
            tools=TEXT, extra_instructions=thread.additional_instructions,
            log_fields={"THREAD_ID": thread.id}))
        reply = Reply(iter(()), model=agent.model or self.model)

        def sentences() -> Iterator[str]:
            yield from answer
            report = answer.report
            reply.tool = report.tool
            if report.source == LLM:  # what the model read and wrote (tools cost none)
                read = [agent.instructions or SYSTEM_PROMPT, thread.additional_instructions,
                        text, *(m["content"] for m in history)]
                reply.input_tokens = sum(estimate_tokens(part) for part in read)
                reply.output_tokens = estimate_tokens(report.text)

        reply.sentences = sentences()
        return reply


class ApiGatedChat:
    """The chat behind the API's gate: a text thread waits for (or yields to) live calls."""

    def __init__(self, chat: Chat, gates) -> None:
        self.chat, self.gates = chat, gates

    def reply(self, history: list[dict[str, str]], system: str | None = None) -> Iterator[str]:
        with self.gates.api("llm"):
            replies = self.chat.reply(history) if system is None else \
                self.chat.reply(history, system=system)
            yield from self.gates.api_slices("llm", replies)


class ApiGatedRouter:
    """The model's tool choice behind the API's gate."""

    def __init__(self, router, gates) -> None:
        self.router, self.gates = router, gates

    def route(self, text, tools):
        with self.gates.api("llm"), self.gates.api_slice("llm"):
            return self.router.route(text, tools)
