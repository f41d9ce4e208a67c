"""Domain biasing: the tools' words as Whisper's initial prompt, on phone-quality speech."""

from __future__ import annotations

import pytest

from sipassist.bench.answers import wer
from sipassist.voice.asr import normalise_words
from sipassist.voice.bias import tool_prompt
from sipassist.voice.intents import PLACES, recognise

from .audio_helpers import PHONE_RATE, phone_line

pytestmark = pytest.mark.models


def test_the_prompt_holds_the_tools_words_and_no_request():
    prompt = tool_prompt()
    assert "humidity" in prompt and "Tokyo" in prompt and "percent" in prompt
    assert all(city.lower() in PLACES for city in ("Tokyo", "New York", "Sydney"))
    # A whole request in the prompt was completed into garbled speech: none may parse.
    for sentence in prompt.split("."):
        intent = recognise(sentence)
        assert intent is None or intent.tool not in ("CALC", "SET_TIMER"), sentence
    assert not any(ch.isdigit() for ch in prompt)


@pytest.fixture
def biased(transcriber):
    transcriber.prompt = tool_prompt()
    try:
        yield transcriber
    finally:
        transcriber.prompt = ""


WEATHER_QUESTIONS = ("How humid is it?", "What's the humidity?", "Is it windy outside?",
                     "What's the temperature outside?", "How much rain did we get?")


def test_weather_questions_are_heard_with_the_prompt(synthesizer, biased):
    """Without the prompt Whisper base hears "How human is it?" on a mu-law line; with it,
    "humid". One borderline utterance may still flip with the machine's state (it was heard
    as "How can you miss it?" once in a full run), so the bar is four of five; the gain
    itself is measured by `sipassist bench asr --set`."""
    heard = [biased.transcribe(phone_line(synthesizer.synthesize(text), 16000), PHONE_RATE)
             for text in WEATHER_QUESTIONS]
    routed = [text for text in heard if getattr(recognise(text), "tool", None) == "WEATHER"]
    assert len(routed) >= 4, heard


@pytest.mark.parametrize("text", [
    "Remind me in forty minutes to leave for the train.",
    "Hello, this is a message for the building manager. The heating in the top flat has not"
    " worked since Monday, and the radiators in the kitchen and the bedroom are cold.",
])
def test_the_prompt_leaves_room_for_the_whole_utterance(synthesizer, biased, text):
    """The prompt's tokens count towards the decoder's length limit."""
    line = phone_line(synthesizer.synthesize(text), 16000)
    assert wer(text, biased.transcribe(line, PHONE_RATE)) <= 0.15  # "forty" = "40"
