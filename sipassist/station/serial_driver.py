"""What every station driver holds: the open serial link, where it is, how long to wait."""

from __future__ import annotations

import serial

from .clock import Clock, SystemClock


class SerialDriver:
    def __init__(self, link: serial.SerialBase, *, port: str, timeout: float = 3.0,
                 clock: Clock | None = None) -> None:
        self._link = link
        self._where = f"the weather station on {port}"  # how errors name it
        self._timeout = timeout
        self._clock = clock or SystemClock()
