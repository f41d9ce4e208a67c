"""Checking a POST /schedule body and turning it into a pending ScheduleRecord."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..webhooks import validate_callback_url
from .record import ScheduleRecord, new_schedule_id
from .timing import RECURRENCES, format_wall_time, local_instant, next_occurrence

DEFAULT_TIMEZONE = "America/Los_Angeles"
MAX_DELAY = timedelta(days=366)
MAX_MESSAGE_LENGTH = 5000  # as POST /call
MAX_AFFIX_LENGTH = 1000
FIELDS = frozenset({
    "extension", "message", "tool", "tool_params", "delay_seconds", "at_time", "timezone",
    "prefix", "suffix", "recurring", "callback_url",
})
_WALL_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
_AT_TIME_HELP = ("at_time must be an ISO datetime such as 2025-12-01T09:00:00 (with or without "
                 "a UTC offset) or a time of day HH:MM (24-hour), such as 07:00")


class ScheduleRequestError(ValueError):
    """A bad POST /schedule body; str() is the API 400 `detail` and names the field."""

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


def _text(data: dict[str, Any], name: str, max_length: int, *, strip: bool = True,
          empty_ok: bool = False) -> str | None:
    """A string field; None (or JSON null) means absent."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ScheduleRequestError(f"{name} must be a string, not {type(value).__name__}", name)
    if strip:
        value = value.strip()
    if not value:
        if empty_ok:
            return None
        raise ScheduleRequestError(f"{name} must not be empty", name)
    if len(value) > max_length:
        raise ScheduleRequestError(f"{name} is longer than {max_length} characters", name)
    return value


def parse_timezone(name: object) -> ZoneInfo:
    """The zone for an IANA name such as America/Los_Angeles; ScheduleRequestError if unknown."""
    if not isinstance(name, str):
        raise ScheduleRequestError(f"timezone must be a string, not {type(name).__name__}",
                                   "timezone")
    problem = (f"timezone {name!r} is not a known IANA time zone name; use one such as "
               "America/Los_Angeles, Europe/Berlin or UTC")
    if len(name) > 64 or not _ZONE_NAME.fullmatch(name):
        raise ScheduleRequestError(problem, "timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleRequestError(problem, "timezone") from None


def _one_of(data: dict[str, Any], first: str, second: str) -> str:
    given = [name for name in (first, second) if data.get(name) is not None]
    if len(given) == 2:
        raise ScheduleRequestError(f"give either {first} or {second}, not both", first)
    if not given:
        raise ScheduleRequestError(f"give one of {first} or {second}", first)
    return given[0]


def parse_request(
    data: dict[str, Any],
    now: datetime,
    tool_names: set[str],
    default_timezone: str = DEFAULT_TIMEZONE,
    max_delay: timedelta = MAX_DELAY,
) -> ScheduleRecord:
    """A new pending record from a POST /schedule body; ScheduleRequestError if it is bad.

    A JSON null counts as an absent field. The extension is only checked to be a non-empty
    string: the caller checks it can be dialed (calls.targets.dial_uri). `tool` matches a name
    in `tool_names` ignoring case and is stored as registered; `tool_params` is only checked
    to be an object (the caller checks it against the tool, tools.base.check_params).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(timezone.utc)
    if not isinstance(data, dict):
        raise ScheduleRequestError("request body must be a JSON object")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ScheduleRequestError(f"unknown field '{unknown[0]}'; allowed fields are "
                                   + ", ".join(sorted(FIELDS)), unknown[0])

    extension = data.get("extension")
    if extension is None:
        raise ScheduleRequestError("extension is required", "extension")
    if not isinstance(extension, str):
        raise ScheduleRequestError(
            f"extension must be a string, not {type(extension).__name__}", "extension")
    if not extension.strip():
        raise ScheduleRequestError("extension must not be empty", "extension")

    message = tool = tool_params = None
    if _one_of(data, "message", "tool") == "message":
        message = _text(data, "message", MAX_MESSAGE_LENGTH)
        if data.get("tool_params") is not None:
            raise ScheduleRequestError("tool_params needs tool; a message takes no parameters",
                                       "tool_params")
    else:
        tool = _resolve_tool(data["tool"], tool_names)
        tool_params = data.get("tool_params")
        if tool_params is None:
            tool_params = {}
        if not isinstance(tool_params, dict):
            raise ScheduleRequestError("tool_params must be an object", "tool_params")

    prefix = _text(data, "prefix", MAX_AFFIX_LENGTH, strip=False, empty_ok=True)
    suffix = _text(data, "suffix", MAX_AFFIX_LENGTH, strip=False, empty_ok=True)
    callback_url = _text(data, "callback_url", 4096, empty_ok=True)
    if callback_url is not None:
        problem = validate_callback_url(callback_url)
        if problem:
            raise ScheduleRequestError(problem, "callback_url")

    tz_name = data.get("timezone")
    zone = parse_timezone(default_timezone if tz_name is None else tz_name)

    recurring = data.get("recurring")
    if recurring is not None:
        if not isinstance(recurring, str) or recurring.strip().lower() not in RECURRENCES:
            raise ScheduleRequestError(
                f"recurring must be one of {', '.join(RECURRENCES)}, not {recurring!r}",
                "recurring")
        recurring = recurring.strip().lower()

    wall: time | None = None
    if _one_of(data, "delay_seconds", "at_time") == "delay_seconds":
        if recurring is not None:
            raise ScheduleRequestError(
                "recurring needs at_time (a time of day such as 07:00), not delay_seconds",
                "recurring")
        delay = data["delay_seconds"]
        if isinstance(delay, bool) or not isinstance(delay, int):
            raise ScheduleRequestError(
                f"delay_seconds must be a whole number of seconds, not {delay!r}",
                "delay_seconds")
        if delay < 1:
            raise ScheduleRequestError("delay_seconds must be at least 1", "delay_seconds")
        if delay > max_delay.total_seconds():
            raise ScheduleRequestError(
                f"delay_seconds must be at most {int(max_delay.total_seconds())} "
                f"({max_delay.days} days)", "delay_seconds")
        next_run = now + timedelta(seconds=delay)
    else:
        next_run, wall = _parse_at_time(data["at_time"], zone, now, recurring)
        if next_run - now > max_delay:
            raise ScheduleRequestError(
                f"at_time is more than {max_delay.days} days ahead", "at_time")

    return ScheduleRecord(
        schedule_id=new_schedule_id(),
        extension=extension,
        next_run=next_run,
        timezone=zone.key,
        created_at=now,
        message=message,
        tool=tool,
        tool_params=tool_params,
        prefix=prefix,
        suffix=suffix,
        at_time=format_wall_time(wall) if recurring is not None and wall else None,
        recurring=recurring,
        callback_url=callback_url,
    )


def _resolve_tool(name: object, tool_names: set[str]) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ScheduleRequestError("tool must be a tool name such as WEATHER", "tool")
    name = name.strip()
    if name in tool_names:
        return name
    matches = [known for known in tool_names if known.lower() == name.lower()]
    if len(matches) == 1:
        return matches[0]
    raise ScheduleRequestError(
        f"Tool '{name}' not found. Use GET /tools to list available tools.", "tool")


def _parse_at_time(value: object, zone: ZoneInfo, now: datetime,
                   recurring: str | None) -> tuple[datetime, time]:
    """(first run as aware UTC, local wall-clock time of day) for an at_time field."""
    if not isinstance(value, str):
        raise ScheduleRequestError(_AT_TIME_HELP, "at_time")
    text = value.strip()
    match = _WALL_TIME.fullmatch(text)
    if match:
        hour, minute, second = match.groups()
        wall = time(int(hour), int(minute), int(second or 0))
        return next_occurrence(wall, zone, now, recurring), wall

    # A date alone would parse as midnight; insist on a time so "2025-12-01" is not a surprise.
    if "t" not in text.lower() and " " not in text:
        raise ScheduleRequestError(_AT_TIME_HELP, "at_time")
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleRequestError(_AT_TIME_HELP, "at_time") from None
    if moment.tzinfo is None:
        # Naive: a wall-clock time in the schedule's zone, by the gap and overlap rules.
        wall = moment.time()
        instant = local_instant(moment.date(), wall, zone)
    else:
        instant = moment.astimezone(timezone.utc)
        wall = instant.astimezone(zone).time().replace(tzinfo=None, fold=0)
    if instant <= now:
        raise ScheduleRequestError(
            f"at_time {text} is in the past (now is "
            f"{now.astimezone(zone).isoformat(timespec='seconds')} in {zone.key})", "at_time")
    if recurring is not None:
        # The first run is the first day at or after that instant that the recurrence allows.
        wall = wall.replace(microsecond=0)
        instant = next_occurrence(wall, zone, instant - timedelta(seconds=1), recurring)
    return instant, wall
