"""DATETIME: the date and time in a named zone, spoken the way people say it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .base import Parameter, ParameterError, ToolResult

FORMATS = ("full", "date", "time", "iso")
# zoneinfo only knows abbreviations; these are the names people say.
ZONE_NAMES = {
    "EST": "Eastern Standard Time", "EDT": "Eastern Daylight Time",
    "CST": "Central Standard Time", "CDT": "Central Daylight Time",
    "MST": "Mountain Standard Time", "MDT": "Mountain Daylight Time",
    "PST": "Pacific Standard Time", "PDT": "Pacific Daylight Time",
    "AKST": "Alaska Standard Time", "AKDT": "Alaska Daylight Time",
    "HST": "Hawaii Standard Time", "AST": "Atlantic Standard Time",
    "ADT": "Atlantic Daylight Time", "NST": "Newfoundland Standard Time",
    "NDT": "Newfoundland Daylight Time", "GMT": "Greenwich Mean Time",
    "BST": "British Summer Time", "IST": "Irish Standard Time",
    "CET": "Central European Time", "CEST": "Central European Summer Time",
    "EET": "Eastern European Time", "EEST": "Eastern European Summer Time",
    "UTC": "Coordinated Universal Time", "JST": "Japan Standard Time",
    "KST": "Korea Standard Time", "AEST": "Australian Eastern Standard Time",
    "AEDT": "Australian Eastern Daylight Time", "NZST": "New Zealand Standard Time",
    "NZDT": "New Zealand Daylight Time", "SAST": "South Africa Standard Time",
}


def ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def zone_name(moment: datetime, zone_key: str) -> str:
    abbreviation = moment.tzname() or ""
    if abbreviation == "IST" and zone_key.startswith("Asia/"):
        return "India Standard Time"  # the same letters as Irish Standard Time
    if abbreviation in ZONE_NAMES:
        return ZONE_NAMES[abbreviation]
    # e.g. "+03" for Europe/Istanbul: say the place instead.
    return zone_key.split("/")[-1].replace("_", " ") + " time"


def clock_time(moment: datetime, seconds: bool) -> str:
    hour = moment.hour % 12 or 12
    text = f"{hour}:{moment.minute:02d}" + (f":{moment.second:02d}" if seconds else "")
    return f"{text} {'AM' if moment.hour < 12 else 'PM'}"


def resolve_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ParameterError(f"timezone '{name}' is not an IANA time zone name "
                             "(for example America/New_York)") from None


class DateTimeTool:
    name = "DATETIME"
    description = "Get current date and time"
    parameters = (
        Parameter("format", "string", False, "full, date, time or iso"),
        Parameter("timezone", "string", False, "IANA name, for example America/New_York"),
    )
    enabled = True

    def __init__(self, default_timezone: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.default_timezone = default_timezone
        self.clock = clock

    def execute(self, params: dict[str, Any]) -> ToolResult:
        fmt = params.get("format", "full")
        if fmt not in FORMATS:
            raise ParameterError(f"format must be one of {', '.join(FORMATS)}, not '{fmt}'")
        zone_key = params.get("timezone") or self.default_timezone
        now = self.clock().astimezone(resolve_zone(zone_key))
        date = f"{now:%A}, {now:%B} {ordinal(now.day)}, {now.year}"
        if fmt == "date":
            message = f"It's {date}"
        elif fmt == "time":
            message = f"It's {clock_time(now, seconds=False)} {zone_name(now, zone_key)}"
        elif fmt == "iso":
            message = now.isoformat(timespec="seconds")
        else:
            message = f"It's {date} at {clock_time(now, seconds=True)} {zone_name(now, zone_key)}"
        return ToolResult(True, message, {"datetime": now.isoformat(timespec="seconds"),
                                          "timezone": zone_key})
