"""WEATHER: current conditions from the weather station wired to this box (no internet).

    At Storm Lake, as of 9:30 pm, it's 44 degrees with foggy conditions. Wind is calm.
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from sipassist.station.errors import StationError
from sipassist.station.reader import StationReader
from sipassist.station.reading import Reading, conditions, feels_like_f
from sipassist.station.settings import StationSettings

from .base import Parameter, ToolResult

log = logging.getLogger(__name__)

UNREACHABLE = "Sorry, I can't reach the weather station right now."
FEELS_LIKE_MIN_DIFFERENCE = 3  # degrees between air and "feels like" worth mentioning
COMPASS = ("north", "northeast", "east", "southeast", "south", "southwest", "west",
           "northwest")


def whole(value: float) -> int:
    """Rounded half away from zero, as people round (44.5 -> 45, -0.5 -> -1)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def weather_data(reading: Reading) -> dict[str, Any]:
    """The tool's `data`: whole numbers, as in the API documentation."""
    return {
        "temp_f": whole(reading.temp_f),
        "feels_like_f": whole(feels_like_f(reading)),
        "humidity": None if reading.humidity is None else whole(reading.humidity),
        "wind_mph": None if reading.wind_mph is None else whole(reading.wind_mph),
        "conditions": conditions(reading),
    }


def spoken_time(reading: Reading, zone: tzinfo | None) -> str:
    """"9:30 pm": the observation time in `zone` (None: the system's local zone)."""
    local = reading.observed_at.astimezone(zone)
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'am' if local.hour < 12 else 'pm'}"


def _number(n: int) -> str:
    return f"minus {-n}" if n < 0 else str(n)


def _degrees(n: int) -> str:
    return f"{_number(n)} degree" if abs(n) == 1 else f"{_number(n)} degrees"


def compass_point(degrees: float) -> str:
    return COMPASS[int(((degrees % 360) + 22.5) // 45) % 8]


def describe(reading: Reading, name: str, zone: tzinfo | None = None) -> str:
    """The spoken report, in the style of the API documentation's example."""
    data = weather_data(reading)
    temp, feels = data["temp_f"], data["feels_like_f"]
    text = f"At {name}, as of {spoken_time(reading, zone)}, it's {_degrees(temp)}"
    joiner = " "
    if abs(feels - temp) >= FEELS_LIKE_MIN_DIFFERENCE:
        text += f" but feels like {_number(feels)}"
        joiner = ", "
    words = data["conditions"]
    wind = data["wind_mph"]
    if words == "calm" and wind is not None and wind < 1:
        pass  # "Wind is calm." says it
    elif words == "heavy rain":
        text += f"{joiner}with heavy rain"
    elif words != "unknown":
        text += f"{joiner}with {words} conditions"
    text += "."
    if wind is not None:
        if wind < 1:
            text += " Wind is calm."
        else:
            unit = "mile" if wind == 1 else "miles"
            text += f" Wind is {wind} {unit} per hour"
            if reading.wind_dir_deg is not None:
                text += f" from the {compass_point(reading.wind_dir_deg)}"
            text += "."
    return text


class WeatherTool:
    name = "WEATHER"
    description = "Get current weather conditions from the local weather station"
    parameters: tuple[Parameter, ...] = ()

    def __init__(self, settings: StationSettings, reader: StationReader | None = None) -> None:
        self.settings = settings
        self.enabled = settings.enabled
        self.disabled_reason = "" if self.enabled else (
            "no weather station is configured: set [station] protocol and port in the config")
        self._reader = reader
        self._lock = threading.Lock()
        try:
            self._zone = settings.zone
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("station.timezone %r is unknown; using the system's zone",
                        settings.timezone)
            self._zone = None

    @property
    def reader(self) -> StationReader:
        """The station reader, made on first use (the port is opened only when asked)."""
        with self._lock:
            if self._reader is None:
                self._reader = StationReader(self.settings)
            return self._reader

    def start(self) -> None:
        """Open the station now instead of on the first request (a jsonl station is then
        listened to from the start, and many Arduinos reset when their port opens)."""
        if self.enabled:
            self.reader.start()

    def execute(self, params: dict[str, Any]) -> ToolResult:
        if not self.enabled:
            return ToolResult.failure(
                "no weather station is configured (set [station] protocol)",
                "Sorry, there is no weather station connected to me.")
        try:
            reading = self.reader.current()
        except StationError as exc:
            return ToolResult.failure(str(exc), UNREACHABLE)
        return ToolResult(True, describe(reading, self.settings.name, self._zone),
                          weather_data(reading))

    def close(self) -> None:
        with self._lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
