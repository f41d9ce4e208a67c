"""The agent engine on its own: real tools, a real knowledge base and embedding model, and the
one tool-run path (ToolRegistry.run) every caller shares. No LLM here: what it would answer is
seen as NO_LLM (the calls' tests talk to the model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipassist.agents import Agent, AgentEngine, Persona, TurnContext
from sipassist.agents.engine import KNOWLEDGE, NO_LLM, NO_MODEL, RULES, UNKNOWN
from sipassist.agents.grounding import DONT_KNOW, Grounder, is_question, sentences_of
from sipassist.knowledge import Embedder, KnowledgeBase, NewRow
from sipassist.models import resolve_embedding_model
from sipassist.scheduling import Scheduler
from sipassist.store import Store
from sipassist.tools.calc import CalcTool
from sipassist.tools.datetime_tool import DateTimeTool
from sipassist.tools.registry import (NO_CALLBACK, NoCallback, ParametersRefused, ToolContext,
                                      ToolDisabled, ToolRefused, ToolRegistry)
from sipassist.tools.timer import TimerTool
from sipassist.tools.weather import WeatherTool
from sipassist.config import StationSettings

CLINIC = [
    "We are open Monday to Thursday from 8 am to 6 pm, and on Fridays until 5 pm.",
    "Appointments cancelled less than 24 hours ahead are charged a fee of 30 dollars.",
    "Free parking is available in the lot behind the building.",
    "# Vaccinations\nFlu shots are given without an appointment. Travel vaccinations must be "
    "booked six weeks before you leave. Children's vaccinations follow the national schedule, "
    "and the nurse sends a reminder a month ahead. Please bring the vaccination record.",
]


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory, models_dir: Path) -> KnowledgeBase:
    embedder = Embedder(lambda: resolve_embedding_model(models_dir))
    kb = KnowledgeBase(tmp_path_factory.mktemp("knowledge"), embedder)
    kb.create("clinic")
    kb.add("clinic", [NewRow(row, {}) for row in CLINIC])
    return kb


@pytest.fixture
def tools(tmp_path: Path):
    store = Store(tmp_path / "schedules.json")
    scheduler = Scheduler(store, fire=lambda record: None)
    yield ToolRegistry([CalcTool(), DateTimeTool("UTC"), TimerTool(scheduler, "UTC"),
                        WeatherTool(StationSettings())])  # no station: disabled
    store.close()


def agent(**fields) -> Agent:
    base = dict(id="reception", name="Reception", instructions="You are a receptionist.",
                persona=Persona(), tools=("CALC", "DATETIME", "SET_TIMER", "WEATHER"),
                knowledge=("clinic",))
    return Agent(**{**base, **fields})


def ask(engine: AgentEngine, who: Agent, text: str, context: TurnContext = TurnContext()):
    answer = engine.answer(who, [], text, context)
    return " ".join(answer), answer.report


def test_knowledge_rules_and_unknowns(tools, knowledge):
    engine = AgentEngine(tools, knowledge=knowledge, min_score=0.3)
    reception = agent()

    said, report = ask(engine, reception, "How much do you charge if I cancel late?")
    assert report.source == KNOWLEDGE and said == CLINIC[1], said
    assert report.knowledge[0].content == CLINIC[1] and report.tool_message() is None
    # A rule's "what time" gives way to a row that is clearly closer ...
    said, report = ask(engine, reception, "What time do you close on Fridays?")
    assert report.source == KNOWLEDGE and "Fridays until 5 pm" in said, said
    # ... but not the plain question about now.
    said, report = ask(engine, reception, "What time is it?")
    assert report.source == RULES and report.tool == "DATETIME", said
    assert report.tool_message() == {"role": "tool", "name": "DATETIME", "content": said}
    # A long row gives the sentence that answers, not all of it.
    said, report = ask(engine, reception, "How long before my trip do I book travel shots?")
    assert report.source == KNOWLEDGE and said.startswith("Travel vaccinations must be booked")
    assert len(said) < len(CLINIC[3]) and "#" not in said, said
    # A question no row answers: it says so rather than guess; small talk goes to the model.
    said, report = ask(engine, reception, "Who won the football match last night?")
    assert (said, report.source) == (DONT_KNOW, UNKNOWN)
    said, report = ask(engine, reception, "Thanks a lot.")
    assert (said, report.source) == (NO_LLM, NO_MODEL)
    # An agent without knowledge is today's assistant.
    said, report = ask(engine, agent(knowledge=()), "What is your cancellation policy?")
    assert (said, report.source) == (NO_LLM, NO_MODEL)


def test_an_agent_runs_only_its_own_tools(tools):
    engine = AgentEngine(tools)
    said, report = ask(engine, agent(knowledge=()), "What's 6 times 7?")
    assert said == "The result is 42" and report.tool == "CALC"
    assert report.tool_args == {"expression": "6 * 7"} and report.tool_result.data == {"result": 42}
    said, report = ask(engine, agent(knowledge=(), tools=("DATETIME",)), "What's 6 times 7?")
    assert report.tool is None and said == NO_LLM
    # A disabled tool is not offered either (the weather station is not configured).
    said, report = ask(engine, agent(knowledge=()), "What's the weather like?")
    assert report.tool is None and said == NO_LLM


def test_one_tool_path_for_every_caller(tools):
    engine = AgentEngine(tools)
    timer = "Set a timer for three minutes."
    # On a call whose caller cannot be rung back, the timer is refused with the words of
    # every path; with a caller, the call-back extension comes from the context.
    said, report = ask(engine, agent(knowledge=()), timer,
                       TurnContext(tools=ToolContext(conversation=True, caller=None)))
    assert said == NO_CALLBACK and report.tool == "SET_TIMER" and report.tool_result is None
    assert report.tool_message() == {"role": "tool", "name": "SET_TIMER", "content": NO_CALLBACK}
    said, report = ask(engine, agent(knowledge=()), timer,
                       TurnContext(tools=ToolContext(conversation=True, caller="1001")))
    assert said == "Timer set for 3 minutes." and report.tool_result.data["extension"] == "1001"

    # The API and schedules: the same refusals, each with its HTTP status.
    with pytest.raises(ToolDisabled, match=r"\[station\]") as disabled:
        tools.run("WEATHER", {})
    assert disabled.value.status == 409
    with pytest.raises(ParametersRefused, match="expression") as bad:
        tools.run("CALC", {})
    assert bad.value.status == 400 and bad.value.spoken.startswith("Sorry, CALC needs")
    with pytest.raises(ToolRefused, match="TELEPORT"):
        tools.run("TELEPORT", {})
    with pytest.raises(NoCallback):
        tools.run("SET_TIMER", {"duration": 60}, ToolContext(conversation=True))
    assert tools.run("SET_TIMER", {"duration": 60, "extension": "1002"}).success


def test_grounding_helpers(knowledge):
    assert is_question("what is your address") and is_question("Parking?")
    assert not is_question("Thanks, that's great.")
    assert sentences_of("## Parking\nQ: Where do I park? A: Behind the building.") == [
        "Behind the building."]
    grounder = Grounder(knowledge, 0.3)
    assert grounder.ground(["clinic", "gone"], "Where can I park my car?").spoken == CLINIC[2]
    assert grounder.ground(["clinic"], "What is the capital of Australia?") is None
