"""The conversation's brain: an agent, the history and the turn's text in, the answer out
sentence by sentence. Phone calls (calls/inbound.py keeps the audio) and text threads both
answer through it, so nothing about answering is written twice.

A turn is answered by the first of:
1. the plain-intent rules (voice/intents.py), or the correction of a timer just set;
2. for an agent with knowledge, its tables: a row close enough to the question. Asked before
   the model's tool choice, which sent most knowledge questions to a tool, and before a rule's
   DATETIME or WEATHER when a row is clearly closer ("what time do you close on Fridays");
3. the model's tool choice (voice/routing.py) among the agent's tools;
4. an agent with knowledge and a question nothing answers: "Sorry, I don't know that.";
5. the LLM with the agent's instructions.
Tools run through ToolRegistry.run with the turn's ToolContext (who may be rung back).
`Answer.report` says what was done, for a transcript or a thread's history.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..calls.timer_talk import TimerTalk
from ..knowledge import Hit, KnowledgeBase
from ..tools.base import ToolResult
from ..tools.registry import ToolContext, ToolRefused, ToolRegistry
from ..voice.intents import TOOL, Intent, recognise
from ..voice.llm import SYSTEM_PROMPT, Chat, Message
from ..voice.routing import ToolRouter
from .grounding import DONT_KNOW, Grounder, Grounding, is_question
from .model import Agent

log = logging.getLogger(__name__)

NO_LLM = ("Sorry, I can only help with the time, the weather, sums, timers and reminders "
          "right now.")
LLM_FAILED = "Sorry, I can't answer that right now."
HISTORY_TURNS = 6  # past exchanges kept for the LLM (the prompt must stay short)
# Answered ahead of the endpoint: no side effects, and the same answer a moment later
# (the weather station's next reading may differ, so WEATHER is not among them).
PREPARED_TOOLS = frozenset({"DATETIME", "CALC"})
# A rule's answer about now gives way to a knowledge row this much above the threshold.
RULES_YIELD_TO_KNOWLEDGE = frozenset({"DATETIME", "WEATHER"})
KNOWLEDGE_OVER_RULE_MARGIN = 0.15

# Report.source values
RULES, ROUTED, KNOWLEDGE, UNKNOWN, LLM, NO_MODEL = (
    "rules", "routed", "knowledge", "unknown", "llm", "no_llm")


@dataclass(frozen=True)
class TurnContext:
    """What a turn needs beyond the agent: who tools run for, the conversation's timer
    corrections (a call's or a text's), instructions added for this conversation, and log
    fields (CALL_ID)."""

    tools: ToolContext = ToolContext()
    timers: TimerTalk | None = None
    extra_instructions: str = ""
    log_fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Report:
    """What answering a turn did; complete once the answer's sentences are all taken."""

    source: str = ""  # RULES, ROUTED, KNOWLEDGE, UNKNOWN, LLM or NO_MODEL
    tool: str | None = None
    tool_args: dict[str, Any] | None = None
    tool_result: ToolResult | None = None
    tool_refused: str | None = None  # why the tool did not run
    knowledge: tuple[Hit, ...] = ()
    spoken: list[str] = field(default_factory=list)  # the sentences given so far

    @property
    def text(self) -> str:
        return " ".join(self.spoken)

    def tool_message(self) -> Message | None:
        """The tool's part of the turn as a history message (role "tool")."""
        if self.tool is None:
            return None
        content = self.tool_result.message if self.tool_result is not None \
            else self.tool_refused or ""
        return {"role": "tool", "name": self.tool, "content": content}


class Answer:
    """The sentences of one turn's answer, worked out as they are taken; `report` says how."""

    def __init__(self, sentences: Iterator[str], report: Report) -> None:
        self._sentences = sentences
        self.report = report

    def __iter__(self) -> Iterator[str]:
        for sentence in self._sentences:
            self.report.spoken.append(sentence)
            yield sentence

    def close(self) -> None:
        self._sentences.close()  # type: ignore[attr-defined]


class AgentEngine:
    def __init__(self, tools: ToolRegistry, chat: Chat | None = None,
                 router: ToolRouter | None = None, knowledge: KnowledgeBase | None = None,
                 min_score: float = 0.3) -> None:
        self.tools = tools
        self.chat = chat
        self.router = router  # the model's tool choice, for what the rules miss
        self.grounder = Grounder(knowledge, min_score) if knowledge is not None else None
        self._views: dict[tuple[str, ...], ToolRegistry] = {}

    # -- the turn ----------------------------------------------------------------------------

    def answer(self, agent: Agent, history: list[Message], text: str,
               context: TurnContext = TurnContext()) -> Answer:
        """The answer to `text` from `agent`, given the conversation so far (`history`: role
        user/assistant/tool messages, without this turn). Iterate it for the sentences."""
        report = Report()
        return Answer(self._sentences(agent, history, text, context, report), report)

    def _sentences(self, agent: Agent, history: list[Message], text: str,
                   context: TurnContext, report: Report) -> Iterator[str]:
        timers = context.timers
        intent = (timers.correction(text) if timers else None) or self.rule(agent, text)
        grounding = None
        if agent.knowledge and self.grounder is not None and (
                intent is None or intent.tool in RULES_YIELD_TO_KNOWLEDGE):
            grounding = self.grounder.ground(agent.knowledge, text)
            if grounding is not None and intent is not None and grounding.hits[0].score < \
                    self.grounder.min_score + KNOWLEDGE_OVER_RULE_MARGIN:
                grounding = None  # the rule's answer stands
        if grounding is not None:
            yield from self._grounded(grounding, report, context)
            return
        if intent is None:
            intent = self.route(agent, text, context)
            report.source = ROUTED
        if intent is not None:
            report.source = report.source or RULES
            spoken = self.run_tool(intent, context, report)
            yield timers.settle(intent, report.tool_result, spoken) if timers else spoken
            return
        if agent.knowledge and self.grounder is not None and is_question(text):
            report.source = UNKNOWN
            log.info("no knowledge row answers %r", text, extra=context.log_fields)
            yield DONT_KNOW
            return
        yield from self._chat(agent, history, text, context, report)

    def rule(self, agent: Agent, text: str) -> Intent | None:
        """The plain intent of `text` if it is a tool call the agent may make now."""
        intent = recognise(text)
        if intent is None or intent.kind != TOOL:
            return None
        return intent if self._allowed(agent, intent.tool) else None

    def prepared(self, agent: Agent, text: str) -> str | None:
        """The answer to a plain question with no side effects (the time, a sum), worked out
        while the caller may still be speaking; None for anything else."""
        intent = self.rule(agent, text)
        if intent is None or intent.tool not in PREPARED_TOOLS:
            return None
        return self.run_tool(intent, TurnContext(), Report())

    def route(self, agent: Agent, text: str, context: TurnContext) -> Intent | None:
        if self.router is None:
            return None
        try:
            intent = self.router.route(text, self._view(agent))
        except Exception:  # the model's answer can still serve
            log.exception("tool routing failed", extra=context.log_fields)
            return None
        return intent if intent is not None and self._allowed(agent, intent.tool) else None

    def run_tool(self, intent: Intent, context: TurnContext, report: Report) -> str:
        """Run the intent's tool; what to say (its message, or why it could not run)."""
        report.tool, report.tool_args = intent.tool, dict(intent.args)
        try:
            result = self.tools.run(intent.tool, intent.args, context.tools)
        except ToolRefused as exc:
            log.info("%s not run: %s", intent.tool, exc, extra=context.log_fields)
            report.tool_refused = exc.spoken
            return exc.spoken
        report.tool_result = result
        return result.message

    # -- inside ------------------------------------------------------------------------------

    def _allowed(self, agent: Agent, name: str) -> bool:
        tool = self.tools.get(name)
        return tool is not None and tool.enabled and tool.name in agent.tools

    def _view(self, agent: Agent) -> ToolRegistry:
        """The registry as the agent sees it: the same object for every tool (the router's
        prompt, and with it its cached state, stays the same)."""
        names = tuple(sorted(agent.tools))
        if names == tuple(self.tools.names):
            return self.tools
        view = self._views.get(names)
        if view is None:
            view = self._views[names] = ToolRegistry(
                [tool for tool in self.tools.all() if tool.name in names])
        return view

    def _grounded(self, grounding: Grounding, report: Report,
                  context: TurnContext) -> Iterator[str]:
        report.source, report.knowledge = KNOWLEDGE, grounding.hits
        best = grounding.hits[0]
        log.info("answered from knowledge row %s/%s (score %.2f)", best.table, best.id,
                 best.score, extra=context.log_fields)
        yield grounding.spoken

    def _chat(self, agent: Agent, history: list[Message], text: str, context: TurnContext,
              report: Report) -> Iterator[str]:
        report.source = LLM
        if self.chat is None:
            report.source = NO_MODEL
            yield NO_LLM
            return
        said = [m for m in history if m.get("role") in ("user", "assistant")]
        messages = [*said[-2 * HISTORY_TURNS:], {"role": "user", "content": text}]
        system = agent.instructions or SYSTEM_PROMPT
        if context.extra_instructions:
            system = f"{system}\n{context.extra_instructions}"
        spoken = False
        try:
            # The box's own prompt is left to the model (its cached state starts with it).
            replies = self.chat.reply(messages) if system == SYSTEM_PROMPT \
                else self.chat.reply(messages, system=system)
            for sentence in replies:
                spoken = True
                yield sentence
        except Exception:
            log.exception("the language model failed", extra=context.log_fields)
            if not spoken:
                yield LLM_FAILED
