"""Chat completions for the API, on a llama.cpp context of their own.

Calls keep theirs (voice/llm.py, with its spoken-reply system prompt and KV cache); the API's
requests run on a second context over the same GGUF (weights are memory-mapped once, a context
costs its KV cache, ~25 MB at 2048 tokens for Qwen 0.5B). So an API completion can pause
between tokens while a call's reply is generated, and resume after (voice/gate.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ..models import ResolvedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Usage:
    """The end of a completion: why it stopped and its token counts."""

    finish_reason: str  # "stop" or "length"
    input_tokens: int
    output_tokens: int


class PromptTooLong(ValueError):
    pass


class Completer:
    """One API completion at a time on its own context; `stream` yields text, then Usage."""

    def __init__(self, model: ResolvedModel, threads: int = 2, context: int = 2048) -> None:
        from .llama_models import load_llama  # one model for every context

        started = time.perf_counter()
        self.name = model.name
        self.context = context
        self._llm = load_llama(model.path, n_ctx=context, n_threads=threads,
                               n_batch=64, flash_attn=True, verbose=False)
        self._lock = threading.Lock()
        log.info("loaded a second context of %s for API completions in %.1f s", model.name,
                 time.perf_counter() - started)

    def check_fits(self, messages: list[dict[str, str]], max_tokens: int) -> None:
        """PromptTooLong unless the messages plus max_tokens fit the context."""
        text = "\n".join(m["content"] for m in messages)
        tokens = len(self._llm.tokenize(text.encode("utf-8"), add_bos=False)) + 8 * len(messages)
        if tokens + max_tokens > self.context:
            raise PromptTooLong(
                f"messages are about {tokens} tokens and max_tokens is {max_tokens}: together "
                f"more than the model's context of {self.context} tokens; shorten the messages "
                "or lower max_tokens")

    def stream(self, messages: list[dict[str, str]], max_tokens: int,
               temperature: float) -> Iterator[str | Usage]:
        """Text pieces (about one token each) as generated, then one Usage."""
        with self._lock:
            chunks = self._llm.create_chat_completion(
                messages=messages, stream=True, max_tokens=max_tokens, temperature=temperature)
            produced, finish = 0, "stop"
            for chunk in chunks:
                choice = chunk["choices"][0]
                piece = choice.get("delta", {}).get("content") or ""
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if piece:
                    produced += 1
                    yield piece
            # The context now holds the prompt and what was generated.
            yield Usage(finish, max(0, self._llm.n_tokens - produced), produced)
