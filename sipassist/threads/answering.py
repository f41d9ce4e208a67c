"""How a thread gets its answers: through the agent engine, or the box's chat alone."""

from __future__ import annotations

from collections.abc import Iterator

from ..voice.llm import Chat
from .model import Thread
from .runs import Reply

NO_LLM = "Sorry, I can only answer plain questions about the time, the weather and sums here."


def estimate_tokens(text: str) -> int:
    """About four characters a token for English text (Qwen's tokenizer, measured ~3.8)."""
    return max(1, round(len(text) / 4)) if text else 0


class ChatAnswering:
    """The box's language model with its default prompt (no agent engine wired)."""

    def __init__(self, chat: Chat | None, model: str) -> None:
        self.chat = chat
        self.model = model

    def answer(self, thread: Thread, history: list[dict[str, str]], text: str) -> Reply:
        reply = Reply(iter(()), model=self.model)
        messages = [*history, {"role": "user", "content": text}]
        reply.input_tokens = sum(estimate_tokens(m["content"]) for m in messages)

        def sentences() -> Iterator[str]:
            if self.chat is None:
                reply.input_tokens = 0
                yield NO_LLM
                return
            for sentence in self.chat.reply(messages):
                reply.output_tokens += estimate_tokens(sentence)
                yield sentence

        reply.sentences = sentences()
        return reply


class ApiGatedChat:
    """The chat behind the API's gate: a text thread waits for (or yields to) live calls."""

    def __init__(self, chat: Chat, gates) -> None:
        self.chat, self.gates = chat, gates

    def reply(self, history: list[dict[str, str]]) -> Iterator[str]:
        with self.gates.api("llm"):
            yield from self.gates.api_slices("llm", self.chat.reply(history))
