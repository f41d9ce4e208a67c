"""Timers set on a call, and a correction said right after one.

The timer tool's confirmation repeats what was understood ("Timer set for 30 minutes."), so
a misheard duration is heard at once; then "no, three minutes", "I said three minutes" or
"make it three" on the very next turn cancels that timer and sets the corrected one, with
the same message. Any other turn in between ends the chance to correct it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..tools.base import ToolResult
from ..tools.timer import spoken_duration
from ..voice.choice import words
from ..voice.intents import TOOL, Intent, recognise
from ..voice.numbers import parse_duration, parse_number, tokens

log = logging.getLogger(__name__)

# How a correction starts: "no, ...", "I said ...", "make it ...", "not thirty, three".
# "now": Whisper hears a phone caller's "No, three minutes" as "Now three minutes" at times.
_CORRECTION = re.compile(
    r"^(no|now|nope|nah|not|wrong|sorry|actually|i said|i meant|i mean|i asked for|make it|"
    r"change it to|that's wrong|that is wrong)\b")


@dataclass(frozen=True)
class SetTimer:
    schedule_id: str
    args: dict[str, Any]  # the intent's: duration, and message if any


class TimerTalk:
    def __init__(self, cancel: Callable[[str], bool]) -> None:
        self._cancel = cancel  # Scheduler.cancel
        self.last: SetTimer | None = None  # the timer the previous turn set
        self._replacing: SetTimer | None = None

    def corrects(self, text: str) -> bool:
        """Whether `text` reads as a correction of the timer just set (it may still be none)."""
        return self.last is not None and bool(_CORRECTION.search(" ".join(words(text))))

    def correction(self, text: str) -> Intent | None:
        """The corrected timer, when `text` corrects the one set on the previous turn."""
        last, corrects, self.last = self.last, self.corrects(text), None
        if last is None or not corrects:
            return None
        fresh = recognise(text)  # "no, remind me in 5 minutes to call Alice": all of it
        if fresh is not None and fresh.tool == "SET_TIMER":
            args = {**last.args, **fresh.args}
        else:
            duration = parse_duration(text) or _bare_number(text, last.args["duration"])
            args = {**last.args, "duration": duration}
        if not args["duration"] or args == last.args:
            return None
        self._replacing = last
        return Intent(TOOL, "SET_TIMER", args)

    def settle(self, intent: Intent | None, result: ToolResult | None, spoken: str) -> str:
        """After a tool ran for this turn: remember the timer it set, cancel the one it
        replaced. Returns what to say."""
        replacing, self._replacing = self._replacing, None
        if (intent is None or intent.tool != "SET_TIMER" or result is None
                or not result.success or "schedule_id" not in result.data):
            return spoken
        self.last = SetTimer(result.data["schedule_id"],
                             {**intent.args, "duration": result.data["duration"]})
        if replacing is None:
            return spoken
        cancelled = self._cancel(replacing.schedule_id)
        log.info("timer %s corrected to %d s (old one cancelled: %s)", replacing.schedule_id,
                 result.data["duration"], cancelled)
        if not cancelled:  # it fired already, or was cancelled elsewhere
            return spoken
        return f"OK, not {spoken_duration(replacing.args['duration'])}. {spoken}"


def _bare_number(text: str, before: int) -> int | None:
    """"no, three" after a 30-minute timer: the last number, in the old timer's unit."""
    found, values, i = tokens(text), [], 0
    while i < len(found):
        parsed = parse_number(found, i)
        if parsed:
            values.append(parsed[0])
        i += parsed[1] if parsed else 1
    if not values:
        return None
    unit = 3600 if before % 3600 == 0 else 60 if before % 60 == 0 else 1
    return int(round(values[-1] * unit))
