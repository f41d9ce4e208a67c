"""[station] settings: which weather station is attached, where, and how patient to be with it.

config.py builds StationSettings from the [station] table of the TOML file; validate() words a
wrong value for the person editing that file (raise it as a ConfigError there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROTOCOLS = ("none", "davis", "jsonl")
# Line speed when `baud` is 0: a Davis console/logger talks 19200 8N1 out of the box; the DIY
# line protocol uses 9600 8N1, the Arduino examples' speed (any speed works if both ends agree).
DEFAULT_BAUD = {"davis": 19200, "jsonl": 9600}
STANDARD_BAUDS = (1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200)


@dataclass(frozen=True)
class StationSettings:
    # "none": no station (the WEATHER tool is disabled); "davis": a Davis Vantage Pro/Pro2/Vue
    # console or logger speaking the Vantage serial protocol; "jsonl": a DIY station printing
    # one JSON object per line.
    protocol: str = "none"
    # Serial device (or any pyserial URL); /dev/serial/by-id/... names survive re-plugging.
    port: str = "/dev/ttyUSB0"
    baud: int = 0  # 0 = the protocol's default (DEFAULT_BAUD)
    name: str = "the weather station"  # spoken: "At <name>, as of 9:30 pm, ..."
    timezone: str = ""  # IANA zone for the spoken time; "" = the system's local zone
    stale_seconds: float = 120.0  # an older reading is not reported as current
    timeout_seconds: float = 3.0  # longest wait for the station to answer one request

    @property
    def enabled(self) -> bool:
        return self.protocol != "none"

    @property
    def baudrate(self) -> int:
        return self.baud or DEFAULT_BAUD.get(self.protocol, 9600)

    @property
    def zone(self) -> tzinfo | None:
        """The zone spoken times are given in; None means the system's local zone."""
        return ZoneInfo(self.timezone) if self.timezone else None

    def validate(self) -> None:
        """Raise ValueError naming the station.* key and what to write instead."""
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"station.protocol = {self.protocol!r}: write \"none\", \"davis\" "
                             f"or \"jsonl\"")
        if self.enabled and not self.port:
            raise ValueError("station.port: write the serial device, for example "
                             "\"/dev/ttyUSB0\"")
        if self.baud and self.baud not in STANDARD_BAUDS:
            raise ValueError(f"station.baud = {self.baud}: write 0 (the protocol's default) or "
                             f"one of {', '.join(map(str, STANDARD_BAUDS))}")
        if not re.fullmatch(r"[^\"\r\n<>]{1,64}", self.name):
            raise ValueError("station.name: write 1 to 64 characters, no quotes, < > or line "
                             "breaks, for example \"Storm Lake\"")
        if self.timezone:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"station.timezone = {self.timezone!r}: write an IANA zone "
                                 f"such as \"America/Chicago\", or \"\" for the system's own"
                                 ) from None
        if not 1 <= self.stale_seconds <= 86400:
            raise ValueError("station.stale_seconds: write 1 to 86400 (default 120)")
        if not 0.05 <= self.timeout_seconds <= 60:
            raise ValueError("station.timeout_seconds: write 0.05 to 60 (default 3)")
