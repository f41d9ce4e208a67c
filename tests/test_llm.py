"""The language model: local llama-cpp-python, and an OpenAI-compatible server on loopback."""

from __future__ import annotations

import pytest

from sipassist.voice.llm import CANNOT_CHECK, sentences

pytestmark = pytest.mark.models


def test_sentences_regroup_a_stream():
    pieces = ["Hel", "lo there. How", " are you? I'm", " fine"]
    assert list(sentences(pieces)) == ["Hello there.", "How are you?", "I'm fine"]


def test_local_model_answers_in_sentences(chat):
    """A reply about itself ("I am ...") is spoken, not replaced by the guard's apology."""
    reply = list(chat.reply([{"role": "user", "content": "What is the capital of France?"}]))
    assert CANNOT_CHECK not in reply and "Paris" in " ".join(reply), reply
    reply = list(chat.reply([{"role": "user", "content": "Are you a person or a computer?"}]))
    assert reply and CANNOT_CHECK not in reply, reply


def test_local_model_tells_a_joke_briefly(chat):
    reply = list(chat.reply([{"role": "user", "content": "Tell me a short joke."}]))
    assert reply and all(isinstance(s, str) and s for s in reply)
    assert len(" ".join(reply)) < 600
