"""Scheduled calls: POST/GET/DELETE /schedule requests, the records, and the Scheduler.

- `request`: parse_request checks a POST /schedule body and makes a pending ScheduleRecord.
- `record`: ScheduleRecord and the contract's response and webhook shapes.
- `timing`: DST-correct local times of day (next_occurrence and its gap/overlap rules).
- `scheduler`: Scheduler, which stores schedules and fires them from one thread.

The `schedule` package (a dependency) is not used: it is built around a loop polling
run_pending() against the process's naive local time, keeps jobs only in memory, has no notion
of a one-shot at an absolute instant or of runs missed while the daemon was down, and its
per-job time zones need pytz. Here each schedule carries its own IANA zone (zoneinfo), is
persisted in the store, and the thread sleeps until the earliest run.
"""

from __future__ import annotations

from .record import (
    CANCELLED, COMPLETED, FAILED, MISSED, PENDING, ScheduleRecord, cancelled_response,
    created_response, detail_response, list_item, scheduled_for, webhook_payload,
)
from .request import (
    DEFAULT_TIMEZONE, FIELDS, MAX_DELAY, ScheduleRequestError, parse_request, parse_timezone,
)
from .scheduler import TABLE, Scheduler, SchedulerFull
from .timing import DAILY, WEEKDAYS, WEEKENDS, local_instant, next_occurrence

__all__ = [
    "CANCELLED", "COMPLETED", "DAILY", "DEFAULT_TIMEZONE", "FAILED", "FIELDS", "MAX_DELAY",
    "MISSED", "PENDING", "TABLE", "WEEKDAYS", "WEEKENDS", "ScheduleRecord",
    "ScheduleRequestError", "Scheduler", "SchedulerFull", "cancelled_response",
    "created_response", "detail_response", "list_item", "local_instant", "next_occurrence",
    "parse_request", "parse_timezone", "scheduled_for", "webhook_payload",
]
