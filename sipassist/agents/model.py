"""What an agent is: a persona that answers calls and texts, with its own instructions, tools,
knowledge tables and phone lines.

Agents are frozen; a change makes a new one (`evolve`). `to_json`/`from_json` are the stored
and served shape (the API's AgentInfo has the same fields).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..config import Settings
from ..voice.llm import SYSTEM_PROMPT

DEFAULT_ID = "default"  # made from [conversation]; answers every line no other agent claims
DEFAULT_FAREWELL = "Goodbye!"


@dataclass(frozen=True)
class Persona:
    """How the agent sounds on a call."""

    greeting: str = "Hello, this is your assistant. How can I help?"
    farewell: str = DEFAULT_FAREWELL
    speed: float = 1.0  # speaking speed: 1 is the voice's own, 1.2 a fifth faster
    filler: str = "One moment."  # said when an answer is slow to start ("" = never)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Persona:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    instructions: str  # its system prompt
    persona: Persona = field(default_factory=Persona)
    tools: tuple[str, ...] = ()  # registry names it may run
    knowledge: tuple[str, ...] = ()  # knowledge tables it may search
    model: str = ""  # the LLM; "" = the box's configured one
    lines: tuple[str, ...] = ()  # SIP users / extensions whose calls it answers
    created_at: str = ""
    updated_at: str = ""

    @property
    def is_default(self) -> bool:
        return self.id == DEFAULT_ID

    def evolve(self, **changes: Any) -> Agent:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("tools", "knowledge", "lines"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Agent:
        return cls(
            id=data["id"], name=data.get("name", data["id"]),
            instructions=data.get("instructions", ""),
            persona=Persona.from_json(data.get("persona") or {}),
            tools=tuple(data.get("tools") or ()), knowledge=tuple(data.get("knowledge") or ()),
            model=data.get("model", ""), lines=tuple(data.get("lines") or ()),
            created_at=data.get("created_at", ""), updated_at=data.get("updated_at", ""))


def default_agent(settings: Settings, tools: list[str], now: str = "") -> Agent:
    """Today's assistant as an agent: [conversation]'s greeting and filler, every tool, no
    knowledge, no line of its own (it takes every line no other agent claims)."""
    talk = settings.conversation
    return Agent(
        id=DEFAULT_ID, name="Assistant", instructions=SYSTEM_PROMPT,
        persona=Persona(greeting=talk.greeting, farewell=DEFAULT_FAREWELL, speed=1.0,
                        filler=talk.filler if talk.filler_after_seconds > 0 else ""),
        tools=tuple(tools), knowledge=(), model="", lines=(), created_at=now, updated_at=now)


def line_key(line: str) -> str:
    """A line as it is compared: "Reception" and "sip:reception@box" are the line "reception"."""
    user = line.strip()
    if user.lower().startswith(("sip:", "sips:")):
        user = user.split(":", 1)[1]
    return user.split("@", 1)[0].split(";", 1)[0].lower()
