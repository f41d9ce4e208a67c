"""The language model: local llama-cpp-python, and an OpenAI-compatible server on loopback."""

from __future__ import annotations

import pytest

from sipassist.voice.llm import CANNOT_CHECK, guarded, sentences

pytestmark = pytest.mark.models


def test_sentences_regroup_a_stream():
    pieces = ["Hel", "lo there. How", " are you? I'm", " fine"]
    assert list(sentences(pieces)) == ["Hello there.", "How are you?", "I'm fine"]


def test_made_up_facts_are_not_spoken():
    assert list(guarded(["Sure.", "It is currently 10:30 AM.", "Anything else?"])) == [
        "Sure.", CANNOT_CHECK]
    assert list(guarded(["It's 72 degrees outside."])) == [CANNOT_CHECK]
    assert list(guarded(["The sky is blue because of scattering."])) == [
        "The sky is blue because of scattering."]


def test_local_model_answers_in_sentences(chat):
    reply = list(chat.reply([{"role": "user", "content": "Tell me a short joke."}]))
    assert reply and all(isinstance(s, str) and s for s in reply)
    assert len(" ".join(reply)) < 600
