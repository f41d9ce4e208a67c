"""An agent's fields checked one by one, each refusal naming the field and what to write.

The API's pydantic models check types; these rules hold for every way an agent is made (the
API, the default agent, a file restored after a restart), so they live here once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from .errors import InvalidAgent
from .model import Agent, Persona, line_key

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# A SIP user part or an extension: what a phone dials before the "@".
LINE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
MAX_NAME = 100
MAX_INSTRUCTIONS = 4000  # the small model's context is 2048 tokens; history needs room too
MAX_SPOKEN = 300  # greeting, farewell, filler: said on the phone, so short
MAX_LINES = 10
MAX_MODEL = 200
SPEED = (0.5, 2.0)


def check_id(agent_id: Any) -> str:
    if not isinstance(agent_id, str) or not ID_PATTERN.fullmatch(agent_id):
        raise InvalidAgent(f"id {agent_id!r}: use 1 to 64 lowercase letters, digits, '_' or '-',"
                           " starting with a letter or digit (for example \"reception\")")
    return agent_id


def _text(field: str, value: Any, limit: int, required: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidAgent(f"{field}: write text (a string)")
    value = value.strip()
    if required and not value:
        raise InvalidAgent(f"{field}: must not be empty")
    if len(value) > limit:
        raise InvalidAgent(f"{field} has {len(value)} characters; at most {limit}")
    return value


def check_persona(persona: Persona) -> Persona:
    speed = persona.speed
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) \
            or not SPEED[0] <= speed <= SPEED[1]:
        raise InvalidAgent(f"persona.speed: a number from {SPEED[0]} to {SPEED[1]} (1 = normal)")
    return Persona(
        greeting=_text("persona.greeting", persona.greeting, MAX_SPOKEN, required=True),
        farewell=_text("persona.farewell", persona.farewell, MAX_SPOKEN, required=True),
        speed=float(speed), filler=_text("persona.filler", persona.filler, MAX_SPOKEN))


def _names(field: str, values: Iterable[Any], exists: Callable[[str], bool], what: str,
           hint: str, kept: Iterable[str] = ()) -> tuple[str, ...]:
    """The names, each known (or `kept`: had before, so a table deleted since does not block
    changing the agent's other fields; the engine passes over what is gone)."""
    checked: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidAgent(f"{field}: each entry is a name (a non-empty string)")
        if not exists(value.strip()) and value.strip() not in kept:
            raise InvalidAgent(f"{field}: unknown {what} {value!r}; {hint}")
        if value.strip() not in checked:
            checked.append(value.strip())
    return tuple(checked)


def check_agent(agent: Agent, tool_names: list[str], table_exists: Callable[[str], bool],
                models: list[str], before: Agent | None = None) -> Agent:
    """The agent with its text trimmed and names normalised, or InvalidAgent naming the field.
    `before`: the agent as it was (the names it had stay allowed)."""
    upper = {name.upper(): name for name in tool_names}
    tools = _names("tools", agent.tools, lambda name: name.upper() in upper, "tool",
                   f"the tools are {', '.join(tool_names) or 'none'} (GET /tools)",
                   before.tools if before else ())
    knowledge = _names("knowledge", agent.knowledge, table_exists, "knowledge table",
                       "create it first with POST /v1/knowledge (GET /v1/knowledge lists them)",
                       before.knowledge if before else ())
    lines: list[str] = []
    for line in agent.lines:
        if not isinstance(line, str) or not LINE_PATTERN.fullmatch(line_key(line) or "-"):
            raise InvalidAgent(f"lines: {line!r} is not a SIP user or extension (letters, digits,"
                               " '.', '_', '+' or '-', as in \"reception\" or \"1050\")")
        if line_key(line) not in lines:
            lines.append(line_key(line))
    if len(lines) > MAX_LINES:
        raise InvalidAgent(f"lines: at most {MAX_LINES} per agent")
    model = _text("model", agent.model, MAX_MODEL)
    if model and model not in models:
        raise InvalidAgent(f"model: unknown model {model!r}; this box has "
                           f"{', '.join(models) or 'no language model'} (or leave it empty)")
    return agent.evolve(
        name=_text("name", agent.name, MAX_NAME, required=True),
        instructions=_text("instructions", agent.instructions, MAX_INSTRUCTIONS, required=True),
        persona=check_persona(agent.persona),
        tools=tuple(upper.get(name.upper(), name) for name in tools), knowledge=knowledge,
        lines=tuple(lines), model=model)
