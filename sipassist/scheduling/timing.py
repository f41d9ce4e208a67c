"""Wall-clock times of day in an IANA zone turned into UTC instants, DST-correct.

A recurring schedule is a local time of day ("07:00" in America/Los_Angeles), not a fixed UTC
interval: a daily 07:00 call stays at 07:00 local when the clocks change.

Two local times need a rule, and the rule is the same for every schedule:

* A time that does not exist (it falls in the gap when the clocks spring forward, such as 02:30
  on 2026-03-08 in America/Los_Angeles) runs at the first valid instant after the gap: the
  moment the clocks jump, 03:00 local on that day. The next day it is 02:30 again.
* A time that happens twice (it falls in the overlap when the clocks fall back, such as 01:30 on
  2026-11-01 in America/Los_Angeles) runs once, at its first occurrence (fold=0, the earlier
  offset: 01:30 -07:00).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

DAILY = "daily"
WEEKDAYS = "weekdays"  # Monday to Friday
WEEKENDS = "weekends"  # Saturday and Sunday
RECURRENCES = (DAILY, WEEKDAYS, WEEKENDS)


def runs_on(day: date, recurring: str | None) -> bool:
    """Whether a schedule with this recurrence runs on local date `day` (None: any day)."""
    if recurring is None or recurring == DAILY:
        return True
    if recurring == WEEKDAYS:
        return day.weekday() < 5
    if recurring == WEEKENDS:
        return day.weekday() >= 5
    raise ValueError(f"unknown recurrence {recurring!r}")


def _offset(instant: int, tz: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(instant, timezone.utc).astimezone(tz).utcoffset()


def local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The aware UTC instant of `wall` on `day` in `tz`, by the gap and overlap rules above."""
    naive = datetime.combine(day, wall.replace(tzinfo=None, fold=0))
    first = naive.replace(tzinfo=tz, fold=0)
    utc = first.astimezone(timezone.utc)
    if utc.astimezone(tz).replace(tzinfo=None) == naive:
        return utc  # exists; for an overlap, fold=0 is the first occurrence
    # In a gap, fold=1 reads the wall time with the offset after the jump and fold=0 with the
    # one before, which puts the transition between the two instants. Find it to the second.
    low = int(naive.replace(tzinfo=tz, fold=1).timestamp())
    high = int(first.timestamp())
    before = _offset(low, tz)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(middle, tz) == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, timezone.utc)


def next_occurrence(
    wall_time: time, tz: ZoneInfo, after: datetime, recurring: str | None = None
) -> datetime:
    """The first run of `wall_time` in `tz` strictly after `after`, as an aware UTC datetime.

    `recurring` limits the days: None or "daily" any day, "weekdays" Mon-Fri, "weekends"
    Sat-Sun, judged by the local date in `tz`.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be an aware datetime")
    if recurring is not None and recurring not in RECURRENCES:
        raise ValueError(f"unknown recurrence {recurring!r}")
    start = after.astimezone(tz).date()
    # From the day before: a gap can move a late wall time past local midnight.
    for days in range(-1, 9):
        day = start + timedelta(days=days)
        if not runs_on(day, recurring):
            continue
        candidate = local_instant(day, wall_time, tz)
        if candidate > after:
            return candidate
    raise AssertionError("no occurrence within 9 days")  # every recurrence has one a week


def format_wall_time(wall: time) -> str:
    """"07:00", or "07:00:30" when there are seconds."""
    return wall.strftime("%H:%M:%S" if wall.second else "%H:%M")


def to_local_iso(instant: datetime, tz: ZoneInfo) -> str:
    """Seconds precision with the zone's offset at that instant: 2025-12-01T07:00:00-08:00."""
    return instant.astimezone(tz).isoformat(timespec="seconds")


def utc_iso(instant: datetime | None) -> str | None:
    """Full-precision UTC for storage: 2025-12-01T15:00:00Z (microseconds only if any)."""
    if instant is None:
        return None
    return instant.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_utc(text: str | None) -> datetime | None:
    """The inverse of utc_iso (any offset accepted); the result is aware UTC."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.astimezone(timezone.utc)
