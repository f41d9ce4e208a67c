"""A thread and its messages, as stored and as the API shows them (seed 001's shape)."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..calls.model import iso, utc_now

API = "api"  # typed through /v1/threads
CALL = "call"  # a phone call, inbound or outbound
CHANNELS = (API, CALL)
OPEN = "open"
CLOSED = "closed"
STATUSES = (OPEN, CLOSED)
ROLES = ("user", "assistant", "tool", "system")


def new_thread_id() -> str:
    return f"thread_{secrets.token_hex(8)}"


def now() -> str:
    return iso(utc_now())


@dataclass(frozen=True)
class Message:
    """One message of a history; a tool's answer is role "tool" with the tool's `name`."""

    role: str
    content: str
    name: str | None = None
    tool_call_id: str | None = None
    created_at: str = field(default_factory=now)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name:
            out["name"] = self.name
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        out["created_at"] = self.created_at
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Message:
        return cls(doc["role"], doc["content"], doc.get("name"), doc.get("tool_call_id"),
                   doc.get("created_at") or now())


@dataclass(frozen=True)
class Thread:
    id: str
    organization_id: str
    user_id: str
    agent_id: str
    channel: str = API
    status: str = OPEN
    call_id: str | None = None  # the phone call this thread records
    additional_instructions: str = ""
    checkpoint: str | None = None
    history: tuple[Message, ...] = ()
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)

    def evolve(self, **changes: Any) -> Thread:
        return dataclasses.replace(self, updated_at=now(), **changes)

    def to_api(self) -> dict[str, Any]:
        """Seed 001's fields first, then what this box adds (channel, status, call_id)."""
        return {
            "id": self.id, "organization_id": self.organization_id, "user_id": self.user_id,
            "agent_id": self.agent_id, "checkpoint": self.checkpoint,
            "history": [m.to_json() for m in self.history], "deleted_at": None,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "channel": self.channel, "status": self.status, "call_id": self.call_id,
            "additional_instructions": self.additional_instructions or None,
        }

    def to_document(self) -> dict[str, Any]:
        doc = self.to_api()
        doc.pop("deleted_at")
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Thread:
        return cls(
            id=doc["id"], organization_id=doc["organization_id"], user_id=doc["user_id"],
            agent_id=doc["agent_id"], channel=doc.get("channel", API),
            status=doc.get("status", OPEN), call_id=doc.get("call_id"),
            additional_instructions=doc.get("additional_instructions") or "",
            checkpoint=doc.get("checkpoint"),
            history=tuple(Message.from_json(m) for m in doc.get("history") or ()),
            created_at=doc["created_at"], updated_at=doc["updated_at"])
