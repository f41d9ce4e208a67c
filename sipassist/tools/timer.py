"""SET_TIMER: in `duration` seconds, call the extension back and speak the message."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ..scheduling import Scheduler, ScheduleRequestError, parse_request, scheduled_for
from .base import Parameter, ParameterError, ToolResult

MAX_DURATION = 7 * 24 * 3600
DEFAULT_MESSAGE = "Your timer is done."
_REMINDER = re.compile(r"This is your reminder(?: (to|about) (.+?))?\.?")


def reminder_message(what: str = "", about: bool = False) -> str:
    """What a reminder says when it calls: "This is your reminder to call Bob."."""
    if not what:
        return "This is your reminder."
    return f"This is your reminder {'about' if about else 'to'} {what}."


def confirmation(duration: int, message: str) -> str:
    """What the caller hears on setting it: exactly what was understood, so a misheard
    duration or errand is heard at once."""
    when = spoken_duration(duration)
    reminder = _REMINDER.fullmatch(message)
    if reminder is None:
        return f"Timer set for {when}."
    if not reminder.group(2):
        return f"I'll call you in {when} with your reminder."
    return f"I'll call you in {when} to remind you {reminder.group(1)} {reminder.group(2)}."


def spoken_duration(seconds: int) -> str:
    parts = []
    for size, name in ((3600, "hour"), (60, "minute"), (1, "second")):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'s' if count != 1 else ''}")
    return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)


class TimerTool:
    name = "SET_TIMER"
    description = "Set a timer for a specified duration"
    parameters = (
        Parameter("duration", "integer", True, "seconds"),
        Parameter("message", "string", False, "what to say when it fires"),
        Parameter("extension", "string", False, "who to call; the caller on a phone call"),
    )
    enabled = True
    # On a call or a text, the caller is rung back: ToolRegistry.run fills it in.
    caller_parameter = "extension"

    def __init__(self, scheduler: Scheduler, default_timezone: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.scheduler = scheduler
        self.default_timezone = default_timezone
        self.clock = clock

    def execute(self, params: dict[str, Any]) -> ToolResult:
        duration = params["duration"]
        if not 1 <= duration <= MAX_DURATION:
            raise ParameterError(f"duration must be between 1 and {MAX_DURATION} seconds")
        extension = params.get("extension")
        if not extension:
            raise ParameterError("SET_TIMER needs an extension to call when it fires")
        message = params.get("message") or DEFAULT_MESSAGE
        try:
            record = parse_request(
                {"extension": extension, "message": message, "delay_seconds": duration,
                 "timezone": self.default_timezone},
                self.clock(), set())
        except ScheduleRequestError as exc:
            raise ParameterError(str(exc)) from None
        record = self.scheduler.add(record)
        return ToolResult(True, confirmation(duration, message), {
            "schedule_id": record.schedule_id, "fires_at": scheduled_for(record),
            "duration": duration, "extension": extension,
        })
