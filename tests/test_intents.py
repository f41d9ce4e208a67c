"""Plain intents from transcripts, as Whisper writes them."""

from __future__ import annotations

import pytest

from sipassist.voice.intents import GOODBYE, TOOL, parse_duration, recognise


@pytest.mark.parametrize(("said", "tool", "args"), [
    ("What's the weather like?", "WEATHER", {}),
    ("Is it raining outside?", "WEATHER", {}),
    ("What's 25 times 4 plus 10?", "CALC", {"expression": "25 * 4 + 10"}),
    ("What is 7 divided by 2?", "CALC", {"expression": "7 / 2"}),
    ("What's 25 times 4? Plus 10.", "CALC", {"expression": "25 * 4 + 10"}),  # a pause
    ("What is 1,000 plus 2.5?", "CALC", {"expression": "1000 + 2.5"}),
    ("What time is it?", "DATETIME", {"format": "time"}),
    ("What time is it in Tokyo?", "DATETIME", {"format": "time", "timezone": "Asia/Tokyo"}),
    ("What's the time in New York?", "DATETIME",
     {"format": "time", "timezone": "America/New_York"}),
    ("What's the date today?", "DATETIME", {"format": "date"}),
    ("Set a timer for five minutes.", "SET_TIMER", {"duration": 300}),
    ("Set a timer for 90 seconds", "SET_TIMER", {"duration": 90}),
    ("Remind me in ten minutes to call Bob.", "SET_TIMER",
     {"duration": 600, "message": "This is your reminder to call Bob."}),
])
def test_tool_intents(said, tool, args):
    intent = recognise(said)
    assert intent is not None and intent.kind == TOOL
    if tool == "CALC":
        from sipassist.tools.calc import evaluate
        assert intent.tool == "CALC"
        assert evaluate(intent.args["expression"]) == evaluate(args["expression"])
    else:
        assert (intent.tool, intent.args) == (tool, args)


@pytest.mark.parametrize("said", ["Goodbye!", "OK, bye.", "That's all, thanks."])
def test_goodbye(said):
    assert recognise(said).kind == GOODBYE


@pytest.mark.parametrize("said", ["Tell me a joke.", "Why is the sky blue?", "", "Hello?"])
def test_other_questions_go_to_the_llm(said):
    assert recognise(said) is None


@pytest.mark.parametrize(("text", "seconds"), [
    ("five minutes", 300), ("twenty five seconds", 25), ("an hour", 3600),
    ("half an hour", 1800), ("1 hour and 30 minutes", 5400), ("a minute", 60),
    ("no time at all", None),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds
