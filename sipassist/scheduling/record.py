"""The schedule record, as stored and as the API shows it."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timezone
from typing import Any
from zoneinfo import ZoneInfo

from ..calls.model import iso
from .timing import RECURRENCES, parse_utc, to_local_iso, utc_iso

PENDING = "pending"
COMPLETED = "completed"
CANCELLED = "cancelled"
MISSED = "missed"
FAILED = "failed"
STATUSES = frozenset({PENDING, COMPLETED, CANCELLED, MISSED, FAILED})
FINAL_STATUSES = STATUSES - {PENDING}

_TIMES = ("next_run", "created_at", "last_run_at", "finished_at")


def new_schedule_id() -> str:
    """8 lower-case hex characters, such as "a1b2c3d4"."""
    return secrets.token_hex(4)


@dataclass(frozen=True)
class ScheduleRecord:
    """One scheduled call. Times are aware UTC datetimes; documents hold them as ISO text.

    `at_time` is the local wall-clock time ("07:00") a recurring schedule repeats at, in
    `timezone`; None for a one-shot, whose `next_run` says it all. `finished_at` is when the
    record left "pending" (for pruning old records); not shown by the API.
    """

    schedule_id: str
    extension: str
    next_run: datetime
    timezone: str
    created_at: datetime
    message: str | None = None
    tool: str | None = None
    tool_params: dict[str, Any] | None = None
    prefix: str | None = None
    suffix: str | None = None
    at_time: str | None = None
    recurring: str | None = None
    callback_url: str | None = None
    status: str = PENDING
    last_run_at: datetime | None = None
    runs: int = 0
    last_call_id: str | None = None
    finished_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in _TIMES:
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise ValueError(f"{name} must be an aware datetime")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        if self.recurring is not None:
            if self.recurring not in RECURRENCES:
                raise ValueError(f"unknown recurrence {self.recurring!r}")
            if self.at_time is None:
                raise ValueError("a recurring schedule needs at_time")
        if self.at_time is not None:
            time.fromisoformat(self.at_time)  # raises ValueError if malformed
        ZoneInfo(self.timezone)  # raises if unknown

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def wall_time(self) -> time | None:
        return None if self.at_time is None else time.fromisoformat(self.at_time)

    @property
    def pending(self) -> bool:
        return self.status == PENDING

    @property
    def run_call_id(self) -> str:
        """A call_id for the next run, the same every time that run is attempted.

        A daemon killed after placing the call but before recording the run fires it again on
        restart; a queue that refuses duplicate call_ids then drops the repeat.
        """
        return f"sched-{self.schedule_id}-{self.runs + 1}"

    def spoken_text(self, body: str) -> str:
        """prefix, `body` (the message or the tool's result) and suffix, as one utterance."""
        return " ".join(part.strip() for part in (self.prefix, body, self.suffix)
                        if part and part.strip())

    def evolve(self, **changes: Any) -> ScheduleRecord:
        return dataclasses.replace(self, **changes)

    def to_document(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        for name in _TIMES:
            doc[name] = utc_iso(doc[name])
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ScheduleRecord:
        """Raises KeyError, TypeError or ValueError for a document this cannot read."""
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in doc.items() if k in names}
        for name in _TIMES:
            if name in fields:
                fields[name] = parse_utc(fields[name])
        return cls(**fields)


# -- API shapes, as in the contract's "Scheduled Calls" ------------------------------------

def scheduled_for(record: ScheduleRecord) -> str:
    """next_run in the schedule's zone with its offset then: 2025-12-01T07:00:00-08:00."""
    return to_local_iso(record.next_run, record.zone)


def _seconds_until(record: ScheduleRecord, now: datetime) -> int:
    return max(0, round((record.next_run - now).total_seconds()))


def created_response(record: ScheduleRecord, now: datetime) -> dict[str, Any]:
    """POST /schedule."""
    when = scheduled_for(record)
    return {
        "schedule_id": record.schedule_id,
        "status": "scheduled",
        "extension": record.extension,
        "scheduled_for": when,
        "delay_seconds": _seconds_until(record, now),
        "message": f"Call scheduled for {when}",
        "recurring": record.recurring,
    }


def list_item(record: ScheduleRecord, now: datetime) -> dict[str, Any]:
    """One entry of GET /schedule. For a finished record, scheduled_for is the run it was
    for and remaining_seconds is 0."""
    return {
        "schedule_id": record.schedule_id,
        "extension": record.extension,
        "scheduled_for": scheduled_for(record),
        "remaining_seconds": _seconds_until(record, now) if record.pending else 0,
        "message": record.message,
        "tool": record.tool,
        "recurring": record.recurring,
        "status": record.status,
    }


def detail_response(record: ScheduleRecord, now: datetime) -> dict[str, Any]:
    """GET /schedule/{id}: the list entry plus the request's other fields and run history.

    The contract gives no example; this adds prefix, suffix, timezone, tool_params,
    callback_url, created_at and last_run_at (UTC, "Z"), runs (calls attempted so far) and
    last_call_id (for GET /call/{id}; None before the first run or if it failed).
    """
    return {
        **list_item(record, now),
        "prefix": record.prefix,
        "suffix": record.suffix,
        "timezone": record.timezone,
        "tool_params": record.tool_params,
        "created_at": iso(record.created_at),
        "last_run_at": iso(record.last_run_at),
        "runs": record.runs,
        "last_call_id": record.last_call_id,
        "callback_url": record.callback_url,
    }


def cancelled_response(schedule_id: str) -> dict[str, Any]:
    """DELETE /schedule/{id}."""
    return {"success": True, "message": f"Scheduled call {schedule_id} cancelled"}


def webhook_payload(record: ScheduleRecord, status: str, timestamp: datetime) -> dict[str, Any]:
    """The scheduled call webhook; `status` is the run's outcome: "completed" (the call was
    placed), "failed" or "missed"."""
    return {
        "schedule_id": record.schedule_id,
        "status": status,
        "extension": record.extension,
        "tool": record.tool,
        "recurring": record.recurring,
        "timestamp": iso(timestamp.astimezone(timezone.utc)),
    }
