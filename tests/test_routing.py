"""The local model's tool choice for phrasings the rules miss, with schema-constrained arguments."""

from __future__ import annotations

import pytest

from sipassist.station.settings import StationSettings
from sipassist.tools.base import check_params
from sipassist.tools.calc import CalcTool
from sipassist.tools.datetime_tool import DateTimeTool
from sipassist.tools.registry import ToolRegistry
from sipassist.tools.timer import TimerTool
from sipassist.tools.weather import WeatherTool
from sipassist.voice.intents import has_number, recognise
from sipassist.voice.routing import arguments_schema, few_shot_prompt


def registry(station: bool = True) -> ToolRegistry:
    weather = WeatherTool(StationSettings(protocol="davis" if station else "none",
                                          port="/dev/null"))
    return ToolRegistry([CalcTool(), DateTimeTool("UTC"), weather, TimerTool(None, "UTC")])


def test_argument_schema_comes_from_the_tool_and_leaves_out_what_the_call_fills_in():
    timer = registry().get("SET_TIMER")
    assert arguments_schema(timer) == {
        "type": "object",
        "properties": {"duration": {"type": "integer"}, "message": {"type": "string"}},
        "required": ["duration"],
        "additionalProperties": False,
    }


def test_prompt_offers_only_enabled_tools():
    tools = {t.name: t for t in registry(station=False).all() if t.enabled}
    prompt = few_shot_prompt(tools)
    assert "weather" not in prompt.lower() and "calc:" in prompt


def test_a_sum_needs_a_number_in_what_was_said():
    assert has_number("add twelve and thirty") and has_number("what is 7 squared")
    assert not has_number("explain gravity") and not has_number("what is a black hole")


@pytest.mark.llm
@pytest.mark.parametrize("said, tool, expected", [
    ("Do I need a coat today?", "WEATHER", {}),  # "is it freezing out?": the rules have it
    ("Put 12 and 30 together.", "CALC", {"result": 42}),  # "add 12 and 30": the rules too
    ("Alarm in two hours, please.", "SET_TIMER", {"duration": 7200}),
    ("What's the hour in London?", "DATETIME", {"timezone": "Europe/London"}),
])
def test_the_model_picks_the_tool_the_rules_missed(router, said, tool, expected):
    tools = registry()
    assert recognise(said) is None  # otherwise the rules would have answered it
    intent = router.route(said, tools)
    assert intent is not None and intent.tool == tool, intent
    args = check_params(tools.get(tool), intent.args)  # the grammar kept to the schema
    if tool == "CALC":
        assert tools.run(tools.get("CALC"), args).data["result"] == expected["result"]
    else:
        assert args == {**args, **expected}


@pytest.mark.llm
@pytest.mark.parametrize("said", ["Who is the president of France?", "Explain gravity.",
                                  "Tell me about the moon.", "How are you doing?"])
def test_other_questions_are_left_to_the_model_to_answer(router, said):
    assert router.route(said, registry()) is None
