"""An agent's outbound call: it says what it calls for, converses, and sums up the outcome.

Once the far end answers, the agent talks as it does on an inbound call (calls/inbound.py's
`Dialogue`, the same engine): it opens with its goal, listens, answers turn by turn. A clear
yes or no to the goal (rules, not the model: reliable with a small one) settles it: the agent
thanks, says goodbye and hangs up. The outcome is one line: the rule's verdict with the words
heard, else the model's one sentence on what the callee said, else their last words.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from ..agents.model import Agent
from ..voice.choice import ChoiceOption, ChoiceSpec
from .inbound import Dialogue, InboundCalls
from .model import CallRecord
from .session import CallSession

log = logging.getLogger(__name__)

Summarise = Callable[[list[dict[str, str]]], str]

YES_NO = ChoiceSpec("", (
    ChoiceOption("yes", ("yeah", "yep", "yup", "sure", "correct", "right", "confirm",
                         "confirmed", "okay", "ok", "fine", "absolutely", "of course",
                         "that works", "sounds good", "i will", "i'll be there"), "1"),
    ChoiceOption("no", ("nope", "cancel", "can't make it", "cannot make it", "not",
                        "won't", "decline", "reschedule"), "2"),
))
CLOSING = {"yes": "Thank you, that's noted.", "no": "All right, thank you for letting me know."}
MAX_OUTCOME_CHARS = 200
# Measured with Qwen 0.5B: asked for "the outcome" it restates the goal as done whatever was
# said; asked for the callee's answer it quotes them faithfully.
SUMMARY_PROMPT = ("{lines}\n\nThe assistant called to {goal}. Summarise the callee's answer in "
                  "one short sentence starting with \"The callee\". Only state what the callee "
                  "said.")


def opening(agent: Agent, goal: str) -> str:
    """"Hello, this is Clinic. I'm calling to confirm tomorrow's 2 pm appointment." A goal
    written as a sentence ("Your order is ready.") is said as it is."""
    hello = f"Hello, this is {agent.name}."
    goal = goal.strip()
    if not goal:
        return agent.persona.greeting
    if goal[0].isupper() and goal[-1] in ".?!":
        return f"{hello} {goal}"
    return f"{hello} I'm calling to {goal.rstrip('.')}."


def decision(text: str) -> str | None:
    """"yes", "no" or None (neither, or both: "yes, no, wait")."""
    option = YES_NO.match(text)
    return option.value if option else None


def one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_OUTCOME_CHARS else \
        line[:MAX_OUTCOME_CHARS - 1].rstrip() + "…"


class GoalReached(Exception):
    """The callee answered the goal and the agent has said its closing words."""


class GoalDialogue(Dialogue):
    """The inbound dialogue with the goal said first and a clear answer ending the call."""

    def __init__(self, calls: InboundCalls, session: CallSession, record: CallRecord,
                 agent: Agent, goal: str) -> None:
        persona = replace(agent.persona, greeting=opening(agent, goal))
        instructions = agent.instructions
        if goal:
            instructions = (f"{instructions}\nYou placed this call to {goal}. Keep to that "
                            "goal; answer questions about it briefly.")
        super().__init__(calls, session, record,
                         agent.evolve(persona=persona, instructions=instructions))
        self.goal = goal
        self.decided: tuple[str, str] | None = None  # (yes/no, the words heard)
        self._closing = False

    def hear(self, utterance) -> str:
        text = super().hear(utterance)
        if self.goal and decision(text):
            self.doubt = None  # a plain yes or no is taken even when faintly heard
        return text

    def answer(self, text: str) -> Iterator[str]:
        verdict = decision(text) if self.goal else None
        if verdict is not None:
            self.decided = (verdict, text)
            self._closing = True
            yield CLOSING[verdict]
            yield self.agent.persona.farewell
            return
        yield from super().answer(text)

    def say(self, sentences: Iterable[str], interruptible: bool = True,
            started: float | None = None):
        pending = super().say(sentences, interruptible, started)
        if self._closing:
            raise GoalReached
        return pending


class AgentCalls:
    """The conversation of an agent's answered outbound call (CallRunner's `converse`)."""

    def __init__(self, inbound: InboundCalls, agent_by_id: Callable[[str], Agent],
                 summarise: Summarise | None) -> None:
        self.inbound = inbound
        self.agent_by_id = agent_by_id
        # The model's text for a prompt, for when no rule settles the outcome. Not the call's
        # chat: its guard drops any sentence with a time in it, and outcomes name times.
        self.summarise = summarise

    def converse(self, record: CallRecord, session: CallSession,
                 update: Callable[..., CallRecord]) -> None:
        """Talk until done; the outcome is written however the call ends (CallEnded, a
        hang-up, passes through)."""
        agent = self.agent_by_id(record.agent_id or "default")
        dialogue = GoalDialogue(self.inbound, session, record, agent, record.goal or "")
        dialogue.callback = record.extension  # we rang them: a timer may ring them back
        try:
            dialogue.run()
        except GoalReached:
            pass
        finally:
            outcome = self.outcome(dialogue)
            log.info("outcome: %s", outcome, extra={"CALL_ID": record.call_id})
            update(outcome=outcome)

    def outcome(self, dialogue: GoalDialogue) -> str:
        turns = dialogue.transcript
        said = [t["text"] for t in turns if t["who"] == "caller"]
        decided = dialogue.decided
        if decided is None and dialogue.goal:  # a yes said with goodbye ends the call too
            decided = next(((v, text) for text in said if (v := decision(text))), None)
        if decided is not None:
            verdict, heard = decided
            word = "Yes" if verdict == "yes" else "No"
            return one_line(f'{word}: the callee answered "{heard}" to: {dialogue.goal}')
        if not said:
            return "No answer to the goal: the callee said nothing."
        summary = self.summary(dialogue.goal, turns)
        return one_line(f"Unclear: {summary}" if summary
                        else f'Unclear: the callee last said "{said[-1]}"')

    def summary(self, goal: str, turns: list[dict]) -> str | None:
        if self.summarise is None:
            return None
        lines = "\n".join(f"{'Callee' if t['who'] == 'caller' else 'Assistant'}: {t['text']}"
                          for t in turns)
        prompt = SUMMARY_PROMPT.format(goal=goal or "a conversation", lines=lines)
        try:
            text = self.summarise([{"role": "user", "content": prompt}])
        except Exception:
            log.exception("the summary of the call failed")
            return None
        return text.strip() or None
