"""An agent's call: how it opens, what counts as a clear answer, and the one-line outcome."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sipassist.agents.model import Agent
from sipassist.calls.agent_calls import AgentCalls, decision, opening
from sipassist.calls.model import BUSY, COMPLETED, FAILED, NO_ANSWER, CallRecord

GOAL = "confirm tomorrow's 2 pm appointment"


@pytest.mark.parametrize("said, verdict", [
    ("Yes.", "yes"), ("Yeah, that works for me.", "yes"), ("Sure, I'll be there.", "yes"),
    ("That's right.", "yes"), ("No.", "no"), ("No, I can't make it.", "no"),
    ("I need to cancel.", "no"), ("I won't be there.", "no"), ("That's not right.", "no"),
    ("Who is this?", None), ("What time was it again?", None), ("Yes, no, wait.", None),
    ("", None),
])
def test_a_clear_answer_is_a_rule(said: str, verdict: str | None) -> None:
    assert decision(said) == verdict


def test_opening_says_the_goal() -> None:
    agent = Agent(id="clinic", name="Riverside Clinic", instructions="")
    assert opening(agent, GOAL) == \
        "Hello, this is Riverside Clinic. I'm calling to confirm tomorrow's 2 pm appointment."
    assert opening(agent, "Your glasses are ready.") == \
        "Hello, this is Riverside Clinic. Your glasses are ready."
    assert opening(agent, "") == agent.persona.greeting


def dialogue(turns: list[tuple[str, str]], decided=None, goal: str = GOAL):
    return SimpleNamespace(goal=goal, decided=decided,
                           transcript=[{"who": who, "text": text} for who, text in turns])


def test_outcome_lines_without_a_model() -> None:
    calls = AgentCalls(None, None, None)  # type: ignore[arg-type]
    assert calls.outcome(dialogue([], decided=("yes", "Yes, fine."))) == \
        f'Yes: the callee answered "Yes, fine." to: {GOAL}'
    # A clear answer that came with goodbye (the call ended on it) still counts.
    assert calls.outcome(dialogue([("assistant", "Hello."), ("caller", "No, goodbye.")])) \
        .startswith("No: the callee answered")
    assert calls.outcome(dialogue([("assistant", "Hello.")])) == \
        "No answer to the goal: the callee said nothing."
    assert calls.outcome(dialogue([("caller", "Who is this?")])) == \
        'Unclear: the callee last said "Who is this?"'


@pytest.mark.parametrize("status, error, line", [
    (NO_ANSWER, None, "Not reached: no answer."),
    (BUSY, None, "Not reached: the line was busy or declined the call."),
    (FAILED, "call failed: 404 Not Found", "Not reached: the call failed (call failed: 404 "
                                           "Not Found)."),
])
def test_a_call_not_answered_says_why(status: str, error: str | None, line: str) -> None:
    record = CallRecord("out-1", "1001", "sip:1001@x", "", 1, status=status, error=error,
                        agent_id="default", goal=GOAL)
    assert record.to_api()["outcome"] == line
    assert record.webhook_payload()["outcome"] == line
    plain = CallRecord("out-2", "1001", "sip:1001@x", "Hi", 2, status=COMPLETED)
    assert "outcome" not in plain.to_api() and "outcome" not in plain.webhook_payload()


@pytest.mark.models
def test_the_model_sums_up_an_unclear_call(models_dir) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from sipassist.models import resolve_llm_model
    from sipassist.voice.completion import Completer

    completer = Completer(resolve_llm_model("qwen-0.5b", models_dir))

    def summarise(messages):
        return "".join(p for p in completer.stream(messages, 60, 0.0) if isinstance(p, str))

    calls = AgentCalls(None, None, summarise)  # type: ignore[arg-type]
    line = calls.outcome(dialogue([
        ("assistant", f"Hello, this is Riverside Clinic. I'm calling to {GOAL}."),
        ("caller", "Oh, I forgot about that. Could we move it to Thursday morning instead?"),
        ("assistant", "I'll pass that on to the clinic."),
        ("caller", "Thanks, bye."),
    ]))
    print("outcome:", line)
    assert line.startswith("Unclear: The callee") and "\n" not in line and len(line) <= 200
    assert "Thursday" in line  # what they asked for, not the goal restated as done
