"""A weather station on the far end of a pseudo-terminal, speaking the real protocols.

The driver under test opens `sim.path` (the pty's slave side, a real tty) exactly as it would
open /dev/ttyUSB0; the simulator answers on the master side from its own thread.

    with DavisSim() as sim:               # answers wake-ups and LOOP requests
        sim.values = LoopValues(temp_f=44.0, humidity=98)
        sim.mode = "silent" | "garbage" | "bad_crc" | "ok"
        sim.unplug()                      # closes the pty: the driver sees EOF / EIO

    with JsonlSim(payload={"temp_f": 44.1}) as sim:   # prints a line every `interval` s
        sim.limit = sim.lines_sent + 1                # ... or only one more, then nothing
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import struct
import threading
import tty
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

GARBAGE = b"\xf0\x0f\xaa\x55\xc3\x3c\x99\x66"  # what a wrong baud rate looks like


class ManualClock:
    """A clock that moves only when told to (wall time and monotonic time together)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2025, 11, 30, 21, 30, tzinfo=timezone.utc)
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        with self._lock:
            return 1000.0 + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


# -- Davis LOOP packets, built independently of the driver -----------------------------------

def crc_ccitt(data: bytes) -> int:
    """CRC-CCITT as the Davis document describes it, bit by bit (no table)."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@dataclass
class LoopValues:
    """What the simulated console measures; None sends the protocol's "dashed" value."""

    temp_f: float | None = 44.0
    humidity: int | None = 98
    wind_mph: int | None = 0
    wind_avg_mph: int | None = 0
    wind_dir_deg: int | None = None  # 1..360, 360 = north
    rain_clicks_per_hour: int | None = 0  # 0.01 in per click
    barometer_inhg: float | None = 30.12
    inside_temp_f: float = 68.5
    inside_humidity: int = 41


def loop_packet(v: LoopValues, *, corrupt_crc: bool = False) -> bytes:
    """A 99-byte LOOP packet laid out per the Davis Vantage serial protocol document."""
    p = bytearray(97)
    p[0:3] = b"LOO"
    p[3] = 0  # 3-hour barometer trend: steady
    p[4] = 0  # packet type: LOOP
    struct.pack_into("<H", p, 5, 1234)  # next archive record
    struct.pack_into("<H", p, 7, 0 if v.barometer_inhg is None
                     else round(v.barometer_inhg * 1000))
    struct.pack_into("<h", p, 9, round(v.inside_temp_f * 10))
    p[11] = v.inside_humidity
    struct.pack_into("<h", p, 12, 0x7FFF if v.temp_f is None else round(v.temp_f * 10))
    p[14] = 0xFF if v.wind_mph is None else v.wind_mph
    p[15] = 0xFF if v.wind_avg_mph is None else v.wind_avg_mph
    struct.pack_into("<H", p, 16, 0 if v.wind_dir_deg is None else v.wind_dir_deg)
    p[18:25] = b"\xff" * 7  # extra temperatures: no such sensors
    p[25:29] = b"\xff" * 4  # soil temperatures
    p[29:33] = b"\xff" * 4  # leaf temperatures
    p[33] = 0xFF if v.humidity is None else v.humidity
    p[34:41] = b"\xff" * 7  # extra humidities
    struct.pack_into("<H", p, 41, 0xFFFF if v.rain_clicks_per_hour is None
                     else v.rain_clicks_per_hour)
    p[43] = 0xFF  # UV: no sensor
    struct.pack_into("<H", p, 44, 0x7FFF)  # solar radiation: no sensor
    struct.pack_into("<H", p, 48, 0xFFFF)  # storm start date: no storm
    struct.pack_into("<H", p, 87, 0x0180)  # console battery voltage
    p[95:97] = b"\n\r"
    crc = crc_ccitt(bytes(p))
    if corrupt_crc:
        crc ^= 0x0101
    return bytes(p) + struct.pack(">H", crc)


# -- the pty ----------------------------------------------------------------------------------

class PtySim:
    """A pty pair and a thread serving the master side until stop() or unplug()."""

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        # The slave stays open here too, so the master never reads EIO between the driver's
        # connections; raw mode so no byte is translated (CR/LF) or echoed.
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        os.set_blocking(self._master, False)
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__,
                                        daemon=True)
        self._closed = False

    def start(self) -> PtySim:
        self._thread.start()
        return self

    def __enter__(self):  # noqa: ANN204 - the subclass type
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """End the thread and close the pty (the driver then sees the device vanish)."""
        if self._closed:
            return
        self._stopping.set()
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)
        self._closed = True

    unplug = stop  # pulling the cable: the tty disappears under the driver

    def send(self, data: bytes) -> None:
        """Write to the driver; what does not fit in the pty's buffer is dropped, as a UART
        with nobody reading drops bytes."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return
                raise
            view = view[written:]

    def _run(self) -> None:
        raise NotImplementedError


class DavisSim(PtySim):
    """A Davis Vantage console: LF -> LF CR, "LOOP n" -> ACK and n LOOP packets."""

    def __init__(self, values: LoopValues | None = None, mode: str = "ok") -> None:
        super().__init__()
        self.values = values or LoopValues()
        self.mode = mode  # "ok", "silent", "garbage", "bad_crc"
        self.commands: list[bytes] = []  # every line received, for the test to inspect
        self._received = threading.Condition()
        self._buffer = b""

    def wait_for_commands(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """The commands received once there are at least `count` (or at `timeout`)."""
        with self._received:
            self._received.wait_for(lambda: len(self.commands) >= count, timeout)
            return list(self.commands)

    def _run(self) -> None:
        while not self._stopping.is_set():
            ready, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                data = os.read(self._master, 1024)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    continue
                return
            self._buffer += data
            while b"\n" in self._buffer:
                line, _, self._buffer = self._buffer.partition(b"\n")
                self._answer(line.strip(b"\r"))

    def _answer(self, line: bytes) -> None:
        with self._received:
            self.commands.append(line)
            self._received.notify_all()
        mode = self.mode
        if mode == "silent":
            return
        if mode == "garbage":
            self.send(GARBAGE)
            return
        if line == b"":
            self.send(b"\n\r")  # awake
            return
        match = re.fullmatch(rb"LOOP (\d+)", line)
        if not match:
            self.send(b"\x21")  # NAK: unknown command
            return
        self.send(b"\x06")
        for _ in range(int(match.group(1))):
            self.send(loop_packet(self.values, corrupt_crc=mode == "bad_crc"))


class JsonlSim(PtySim):
    """A DIY station printing a JSON line every `interval` seconds."""

    def __init__(self, payload: dict[str, Any] | None = None, mode: str = "ok",
                 interval: float = 0.02, limit: int | None = None) -> None:
        super().__init__()
        self.payload = payload if payload is not None else {
            "temp_f": 44.1, "humidity": 98, "wind_mph": 0, "rain_in_hr": 0}
        self.mode = mode  # "ok", "silent", "garbage"
        self.interval = interval
        self.limit = limit  # stop printing after this many good lines (None: never)
        self.lines_sent = 0

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self.mode == "ok" and (self.limit is None or self.lines_sent < self.limit):
                self.send(json.dumps(self.payload).encode() + b"\n")
                self.lines_sent += 1
            elif self.mode == "garbage":
                self.send(b"reset cause: " + GARBAGE + b"{not json\n")
            # Paces the station's output (as its own loop() delay would); wakes early on stop.
            if select.select([self._wake_r], [], [], self.interval)[0]:
                return
