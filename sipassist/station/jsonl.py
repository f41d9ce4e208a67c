"""DIY stations (Arduino, ESP32, ...) that print one JSON object per line, for example

    {"temp_f": 44.1, "humidity": 98, "wind_mph": 0, "rain_in_hr": 0}

Keys (all but the temperature optional; null means "no reading"; unknown keys are ignored):
    temp_f | temp_c                      air temperature (required)
    humidity                             relative humidity, %
    wind_mph | wind_kmh | wind_ms        wind speed
    wind_dir                             degrees the wind comes from, 0 = north
    rain_in_hr | rain_mm_hr              rain rate
    barometer_inhg | pressure_hpa        sea-level pressure
    dew_point_f | dew_point_c            derived from temperature and humidity when absent

Lines that are not such an object (boot messages, noise, a line cut short) are logged and
skipped.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

import serial

from .clock import Clock
from .davis import reason
from .errors import StationError
from .serial_driver import SerialDriver
from .reading import Reading

log = logging.getLogger(__name__)

MAX_LINE = 1024  # a longer run of bytes without a newline is noise, not a reading
KMH_TO_MPH = 1 / 1.609344
MS_TO_MPH = 3600 / 1609.344
HPA_TO_INHG = 1 / 33.8638866667

_UNITS: dict[str, tuple[tuple[str, Any], ...]] = {
    # field: ((key, conversion to the Reading's unit), ...), first key present wins
    "temp_f": (("temp_f", lambda v: v), ("temp_c", lambda v: v * 1.8 + 32)),
    "humidity": (("humidity", lambda v: v),),
    "wind_mph": (("wind_mph", lambda v: v), ("wind_kmh", lambda v: v * KMH_TO_MPH),
                 ("wind_ms", lambda v: v * MS_TO_MPH)),
    "wind_dir_deg": (("wind_dir", lambda v: v % 360), ("wind_dir_deg", lambda v: v % 360)),
    "rain_rate_in_hr": (("rain_in_hr", lambda v: v), ("rain_mm_hr", lambda v: v / 25.4)),
    "barometer_inhg": (("barometer_inhg", lambda v: v), ("pressure_hpa",
                                                         lambda v: v * HPA_TO_INHG)),
    "dew_point_f": (("dew_point_f", lambda v: v), ("dew_point_c", lambda v: v * 1.8 + 32)),
}
# Plausible ranges in the Reading's units; outside them the line is rejected as garbage.
_RANGES = {
    "temp_f": (-80.0, 150.0), "humidity": (0.0, 100.0), "wind_mph": (0.0, 250.0),
    "wind_dir_deg": (0.0, 360.0), "rain_rate_in_hr": (0.0, 40.0),
    "barometer_inhg": (15.0, 35.0), "dew_point_f": (-100.0, 150.0),
}


def parse_line(line: bytes | str, observed_at: datetime) -> Reading:
    """The Reading in one line; ValueError saying what is wrong with it otherwise."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("not UTF-8 text") from None
    text = line.strip()
    if not text:
        raise ValueError("empty line")
    try:
        obj = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    values: dict[str, float | None] = {}
    for field, choices in _UNITS.items():
        values[field] = None
        for key, convert in choices:
            if obj.get(key) is None:
                continue
            raw = obj[key]
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise ValueError(f"{key} is not a number")
            value = float(convert(raw))
            low, high = _RANGES[field]
            if field == "humidity" and 100 < value <= 105:
                value = 100.0  # capacitive sensors overshoot a little when saturated
            if not low <= value <= high:
                raise ValueError(f"{key} = {raw} is out of range")
            values[field] = value
            break
    temp = values.pop("temp_f")
    if temp is None:
        raise ValueError("no temp_f or temp_c")
    if values["humidity"] == 0:
        values["humidity"] = None  # 0 % is a sensor fault, not a reading
    return Reading(temp_f=temp, observed_at=observed_at, **values)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


class JsonlDriver(SerialDriver):
    """Reads lines from an open pyserial port and turns the valid ones into Readings."""

    def __init__(self, link: serial.SerialBase, *, port: str, timeout: float = 3.0,
                 clock: Clock | None = None) -> None:
        super().__init__(link, port=port, timeout=timeout, clock=clock)
        self._buffer = b""
        self._noisy = False  # the last line was garbage: log further ones quietly
        self.garbage_lines = 0

    def poll(self, wait: float) -> Reading | None:
        """The latest valid reading among the lines that arrive within `wait` seconds
        (returning as soon as there is any data), or None. StationError(lost) on EOF/EIO."""
        try:
            if self._link.timeout != wait:
                self._link.timeout = wait
            data = self._link.read(1)
            if data and self._link.in_waiting:
                data += self._link.read(self._link.in_waiting)
        except (serial.SerialException, OSError) as exc:
            raise StationError(f"{self._where} was disconnected ({reason(exc)})",
                               lost=True) from exc
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > MAX_LINE:
            lines.append(self._buffer)
            self._buffer = b""
        latest = None
        for line in lines:
            if not line.strip():
                continue
            try:
                latest = parse_line(line, self._clock.now())
            except ValueError as exc:
                self.garbage_lines += 1
                (log.debug if self._noisy else log.warning)(
                    "%s sent a line that is not a reading (%s): %r",
                    self._where, exc, line[:80])
                self._noisy = True
            else:
                self._noisy = False
        return latest

    def read(self) -> Reading:
        """The latest valid reading, waiting up to the timeout for one to arrive."""
        deadline = time.monotonic() + self._timeout
        garbage_before = self.garbage_lines
        latest = None
        while True:
            remaining = deadline - time.monotonic()
            if latest is not None and (remaining <= 0 or not self._pending()):
                return latest
            if remaining <= 0:
                raise no_reading_error(self._where, self._timeout,
                                       self.garbage_lines > garbage_before)
            latest = self.poll(remaining) or latest


    def _pending(self) -> int:
        try:
            return self._link.in_waiting
        except (serial.SerialException, OSError) as exc:
            raise StationError(f"{self._where} was disconnected ({reason(exc)})",
                               lost=True) from exc


def no_reading_error(where: str, timeout: float, garbage: bool) -> StationError:
    detail = " (only lines that are not readings; wrong baud rate?)" if garbage else ""
    return StationError(f"{where} sent no valid reading in {timeout:g} s{detail}")
