"""Where readers get the time: wall time for timestamps, monotonic time for ages and back-off."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current wall time, timezone-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (a Pi without RTC jumps at NTP sync)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()
