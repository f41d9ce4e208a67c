"""The language model for what the plain intents do not cover, streamed sentence by sentence.

Local by default (llama-cpp-python with a GGUF model); an OpenAI-compatible server (llama.cpp
server, vLLM, Ollama) by config. The system prompt stays the same on every turn, so the local
model reuses its KV cache and only evaluates the new turns.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are a friendly voice assistant answering a telephone call. Reply in one or two short "
    "spoken sentences with no lists, markdown or emoji. You do not know the current time, date "
    "or weather, and never guess them or any other fact you are unsure of: say you cannot "
    "check that."
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

Message = dict[str, str]


class Chat(Protocol):
    # `system` replaces SYSTEM_PROMPT (an agent's instructions); None keeps it.
    def reply(self, history: list[Message], system: str | None = None) -> Iterator[str]: ...


def sentences(pieces: Iterable[str]) -> Iterator[str]:
    """Regroup streamed text pieces into whole sentences, as soon as each is complete."""
    buffer = ""
    for piece in pieces:
        buffer += piece
        parts = _SENTENCE_END.split(buffer)
        for sentence in parts[:-1]:
            if sentence.strip():
                yield sentence.strip()
        buffer = parts[-1]
    if buffer.strip():
        yield buffer.strip()


# A small model states times and temperatures it cannot know; such a reply is not spoken.
# A time is a clock reading ("10:30"), or an hour with a.m./p.m. or o'clock ("5 am", "five
# p.m."): "am" alone is the verb ("I am", "am I"), so it counts only after a number. A
# temperature is a number of degrees said of now ("it's 72 degrees", "currently 20°C"), not a
# fact ("water boils at 100 degrees").
_HOUR = r"(?:\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_CLOCK = re.compile(
    r"\b\d{1,2}:\d{2}\b"
    r"|\b\d{1,2}\s*(?:a\.?m\b\.?|p\.?m\b\.?)"  # 5 am, 5pm, 5 a.m.
    rf"|\b{_HOUR}\s+(?:a\.m\.|p\.m\.|pm\b|o'?clock\b)"  # five p.m., six o'clock
    r"|\b(?:today is|it is currently|the time is|the date is)\b", re.IGNORECASE)
_DEGREES = re.compile(r"-?\d+(?:\.\d+)?\s*(?:°|degrees?\b)", re.IGNORECASE)
_NOW = re.compile(r"\b(?:it's|it is|currently|right now|today|tonight|outside|temperature|"
                  r"weather|high of|low of|feels like)\b", re.IGNORECASE)


def invents_a_fact(sentence: str) -> bool:
    """Whether a sentence states the time, the date or the temperature now."""
    return bool(_CLOCK.search(sentence)
                or (_DEGREES.search(sentence) and _NOW.search(sentence)))


CANNOT_CHECK = "Sorry, I can't check that."


def guarded(replies: Iterable[str]) -> Iterator[str]:
    """Pass sentences through until one states a time or temperature; then apologise."""
    for sentence in replies:
        if invents_a_fact(sentence):
            log.info("dropped a made-up fact from the model: %r", sentence)
            yield CANNOT_CHECK
            return
        yield sentence


_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉⁰¹²³⁴⁵⁶⁷⁸⁹", "01234567890123456789")


def clean(text: str) -> str:
    """Drop what should not be read aloud (markdown, emoji); H₂O is said as H2O."""
    text = re.sub(r"[*_`#>|]+", "", text.translate(_SUBSCRIPTS))
    return re.sub(r"[^\x00-\u024f\u2018-\u201d]", "", text).strip()


class LocalChat:
    """llama-cpp-python, loaded once; one turn at a time (the model is not re-entrant)."""

    def __init__(self, model_path: Path, threads: int = 2, context: int = 2048,
                 max_tokens: int = 80) -> None:
        from .llama_models import load_llama  # one model for every context

        self.max_tokens = max_tokens
        self._llm = load_llama(model_path, n_ctx=context, n_threads=threads,
                               n_batch=64, flash_attn=True, verbose=False)
        self._lock = threading.Lock()
        # Evaluate the system prompt now, so the first caller does not wait for it.
        list(self.reply([{"role": "user", "content": "Hi"}]))

    def reply(self, history: list[Message], system: str | None = None) -> Iterator[str]:
        messages = [{"role": "system", "content": system or SYSTEM_PROMPT}, *history]
        with self._lock:
            stream = self._llm.create_chat_completion(
                messages=messages, stream=True, max_tokens=self.max_tokens, temperature=0.3)
            pieces = (chunk["choices"][0]["delta"].get("content") or "" for chunk in stream)
            yield from guarded(text for s in sentences(pieces) if (text := clean(s)))


class RemoteChat:
    """An OpenAI-compatible /v1/chat/completions endpoint, streamed (server-sent events)."""

    def __init__(self, url: str, model: str, api_key: str = "", timeout: float = 30.0,
                 max_tokens: int = 80) -> None:
        self.url = url.rstrip("/") + "/v1/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.max_tokens = max_tokens

    def reply(self, history: list[Message], system: str | None = None) -> Iterator[str]:
        body = json.dumps({
            "model": self.model, "stream": True, "max_tokens": self.max_tokens,
            "temperature": 0.3,
            "messages": [{"role": "system", "content": system or SYSTEM_PROMPT}, *history],
        }).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, body, headers)
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            yield from guarded(text for s in sentences(self._pieces(response))
                               if (text := clean(s)))

    @staticmethod
    def _pieces(response) -> Iterator[str]:
        for raw in response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                delta = json.loads(data)["choices"][0].get("delta", {})
            except (ValueError, KeyError, IndexError):
                continue
            yield delta.get("content") or ""
