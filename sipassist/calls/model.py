"""The call record: one outbound call from request to outcome, as stored and as shown."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

QUEUED = "queued"
RINGING = "ringing"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
NO_ANSWER = "no_answer"
BUSY = "busy"
FAILED = "failed"
TRANSFERRED = "transferred"  # moved elsewhere by PUT /v1/calls/{id}/route

FINAL_STATUSES = frozenset({COMPLETED, NO_ANSWER, BUSY, FAILED, TRANSFERRED})


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    """UTC as the seed writes it: 2025-11-30T10:30:05Z."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    extension: str
    dial_uri: str
    message: str
    seq: int  # FIFO order, survives restarts
    callback_url: str | None = None
    ring_timeout: int = 30
    status: str = QUEUED
    queued_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    message_played: bool = False
    choice: dict[str, Any] | None = None
    choice_response: str | None = None
    choice_raw_text: str | None = None
    error: str | None = None
    direction: str = "outbound"
    # Turns of a conversation: {"who": "caller"|"assistant", "text", "at", "tool"?}
    transcript: tuple[dict[str, Any], ...] = ()
    hangup_by: str | None = None  # "api" when ended by PUT /v1/calls/{id}/hangup
    transferred_to: str | None = None  # the SIP URI of a transfer (PUT /v1/calls/{id}/route)
    thread_id: str | None = None  # the call as a conversation (GET /v1/threads/{id})
    agent_id: str | None = None  # an agent's call (POST /v1/agents/{id}/outbound-call)
    goal: str | None = None  # what an agent's call is for (its "instructions")
    outcome: str | None = None  # an agent's call: one line on how it went
    answered_by: str | None = None  # outbound: "human" | "machine" | "unknown" (answering.py)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def duration(self) -> float | None:
        start, end = parse_iso(self.started_at), parse_iso(self.completed_at)
        if start is None or end is None:
            return None
        return round((end - start).total_seconds(), 1)

    @property
    def agent_call(self) -> bool:
        """Placed by an agent (POST /v1/agents/{id}/outbound-call): it converses."""
        return self.direction == "outbound" and self.agent_id is not None

    @property
    def agent_outcome(self) -> str | None:
        """The agent's one line on its call; a call not answered says why."""
        if self.outcome or not self.final:
            return self.outcome
        if self.status == NO_ANSWER:
            return "Not reached: no answer."
        if self.status == BUSY:
            return "Not reached: the line was busy or declined the call."
        if self.status == FAILED:
            return f"Not reached: the call failed ({self.error or 'unknown error'})."
        return None

    def evolve(self, **changes: Any) -> CallRecord:
        return dataclasses.replace(self, **changes)

    def to_document(self) -> dict[str, Any]:
        # Shallow: records are never changed in place, and asdict's deep copy cost 0.16 ms
        # a record (16 s for moving 100,000 old calls at start).
        doc = {name: getattr(self, name) for name in _FIELD_NAMES}
        doc["transcript"] = list(self.transcript)
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> CallRecord:
        values = {k: v for k, v in doc.items() if k in _FIELD_NAMES}
        values["transcript"] = tuple(values.get("transcript") or ())
        return cls(**values)

    def to_api(self) -> dict[str, Any]:
        """`GET /call/{id}` as in the contract."""
        duration = self.duration
        return {
            "call_id": self.call_id,
            "status": self.status,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "duration_seconds": None if duration is None else int(round(duration)),
            "choice_response": self.choice_response,
            "choice_raw_text": self.choice_raw_text,
            "error": self.error,
            "direction": self.direction,
            "extension": self.extension,
            "transcript": list(self.transcript),
            "thread_id": self.thread_id,
            **({"agent_id": self.agent_id} if self.agent_id else {}),
            **({"outcome": self.agent_outcome} if self.agent_call else {}),
            "answered_by": self.answered_by,
        }

    def to_v1(self) -> dict[str, Any]:
        """`GET /v1/calls/{id}`: the contract's fields and the call control ones."""
        return {**self.to_api(), "hangup_by": self.hangup_by,
                "transferred_to": self.transferred_to}

    def webhook_payload(self) -> dict[str, Any]:
        """The outbound call webhook as in the contract."""
        return {
            "call_id": self.call_id,
            "status": self.status,
            "extension": self.extension,
            "duration_seconds": self.duration,
            "message_played": self.message_played,
            "choice_response": self.choice_response,
            "choice_raw_text": self.choice_raw_text,
            "error": self.error,
            # An agent's call also says what was said and how it went.
            **({"agent_id": self.agent_id, "outcome": self.agent_outcome,
                "transcript": list(self.transcript), "thread_id": self.thread_id}
               if self.agent_call else {}),
            "answered_by": self.answered_by,
        }


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(CallRecord))
