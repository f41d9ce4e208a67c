"""Davis Vantage Pro / Pro2 / Vue consoles and data loggers over their serial protocol.

The exchange, per Davis's "Vantage Serial Protocol" document (19200 baud 8N1 by default):

1. Wake the console: send LF, expect LF CR back within about 1.2 s; up to three tries.
2. Send "LOOP 1" LF; the console answers ACK (0x06), then one 99-byte LOOP packet.
3. The packet starts "LOO" and ends with a CRC-CCITT (big-endian); the CRC of all 99 bytes,
   CRC included, is 0 when the packet arrived intact.

Numbers in the packet are little-endian; sensors that are not there report "dashed" values
(0x7FFF, 0xFF, ...), which become None.
"""

from __future__ import annotations

import struct
from datetime import datetime

import serial

from .errors import StationError
from .reading import Reading
from .serial_driver import SerialDriver

WAKE = b"\n"
WAKE_REPLY = b"\n\r"
WAKE_TRIES = 3
WAKE_WAIT_SECONDS = 1.2  # Davis: "a reasonable interval (say 1.2 seconds)"
ACK = b"\x06"
LOOP_COMMAND = b"LOOP 1\n"
LOOP_SIZE = 99

# LOOP (type 0, "Rev B") packet offsets, from the Davis protocol document's LOOP table.
OFF_PACKET_TYPE = 4  # uint8, 0 for LOOP (1 would be LOOP2)
OFF_BAROMETER = 7  # uint16, inHg / 1000, sea-level corrected; 0 = no reading
OFF_INSIDE_TEMP = 9  # int16, tenths of a degree F
OFF_INSIDE_HUMIDITY = 11  # uint8, %
OFF_OUTSIDE_TEMP = 12  # int16, tenths of a degree F; 32767 = dashed
OFF_WIND_SPEED = 14  # uint8, mph; 255 = dashed
OFF_WIND_AVG_10MIN = 15  # uint8, mph; 255 = dashed
OFF_WIND_DIR = 16  # uint16, degrees 1..360 (360 = north); 0 or 32767 = dashed
OFF_OUTSIDE_HUMIDITY = 33  # uint8, %; 255 = dashed
OFF_RAIN_RATE = 41  # uint16, bucket tips per hour; 65535 = dashed

DASH_INT16 = 0x7FFF
DASH_UINT8 = 0xFF
DASH_UINT16 = 0xFFFF
RAIN_PER_CLICK_IN = 0.01  # the US rain collector; 0.2 mm metric buckets are not decoded


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0) -> int:
    """Davis's CRC-CCITT: polynomial 0x1021, initial value 0, no reflection (CRC-16/XMODEM).

    Over a packet with its CRC appended (big-endian) the result is 0."""
    for byte in data:
        crc = _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF] ^ ((crc << 8) & 0xFFFF)
    return crc


def decode_loop(packet: bytes, observed_at: datetime, where: str = "the weather station"
                ) -> Reading:
    """The Reading in a checked 99-byte LOOP packet; StationError if it carries no
    outside temperature (the outdoor sensors are out of range or not reporting)."""
    def u8(offset: int) -> int:
        return packet[offset]

    def u16(offset: int) -> int:
        return struct.unpack_from("<H", packet, offset)[0]

    def s16(offset: int) -> int:
        return struct.unpack_from("<h", packet, offset)[0]

    raw_temp = s16(OFF_OUTSIDE_TEMP)
    if raw_temp in (DASH_INT16, -DASH_INT16 - 1) or not -1000 <= raw_temp <= 2000:
        raise StationError(f"{where} reports no outside temperature (are the outdoor "
                           f"sensors out of range?)")
    humidity: float | None = u8(OFF_OUTSIDE_HUMIDITY)
    if humidity == DASH_UINT8 or not 0 < humidity <= 100:
        humidity = None
    wind: float | None = u8(OFF_WIND_SPEED)
    if wind == DASH_UINT8:
        wind = None
    direction: float | None = u16(OFF_WIND_DIR)
    if direction == 0 or direction > 360:
        direction = None
    elif direction == 360:
        direction = 0
    rain: float | None = u16(OFF_RAIN_RATE)
    rain = None if rain == DASH_UINT16 else rain * RAIN_PER_CLICK_IN
    baro: float | None = u16(OFF_BAROMETER) / 1000.0
    if not 20.0 <= baro <= 32.5:  # the console's own valid range; 0 = no reading yet
        baro = None
    return Reading(temp_f=raw_temp / 10.0, humidity=humidity, wind_mph=wind,
                   wind_dir_deg=direction, rain_rate_in_hr=rain, barometer_inhg=baro,
                   observed_at=observed_at)


class DavisDriver(SerialDriver):
    """Asks a Davis console for one LOOP packet per read() over an open pyserial port."""

    def read(self) -> Reading:
        try:
            self._wake()
            packet = self._loop()
        except StationError:
            raise
        except (serial.SerialException, OSError) as exc:
            raise StationError(f"{self._where} was disconnected ({reason(exc)})",
                               lost=True) from exc
        return decode_loop(packet, self._clock.now(), self._where)

    def _set_timeout(self, seconds: float) -> None:
        if self._link.timeout != seconds:
            self._link.timeout = seconds

    def _wake(self) -> None:
        # Bounded by the configured timeout: three tries of at most 1.2 s each.
        self._set_timeout(min(WAKE_WAIT_SECONDS, self._timeout / WAKE_TRIES))
        garbage = b""
        for _ in range(WAKE_TRIES):
            self._link.reset_input_buffer()
            self._link.write(WAKE)
            answer = self._link.read(len(WAKE_REPLY))
            if answer == WAKE_REPLY:
                return
            garbage = garbage or answer
        if garbage:
            raise StationError(f"{self._where} answers with garbage ({garbage!r} instead of "
                               f"the wake-up reply; wrong baud rate or not a Davis console?)")
        raise StationError(f"{self._where} is not answering")

    def _loop(self) -> bytes:
        self._set_timeout(self._timeout)
        self._link.write(LOOP_COMMAND)
        ack = self._link.read(1)
        if not ack:
            raise StationError(f"{self._where} is not answering (no reply to LOOP)")
        if ack != ACK:
            raise StationError(f"{self._where} refused the LOOP command (answered {ack!r})")
        packet = self._link.read(LOOP_SIZE)
        if not packet:
            raise StationError(f"{self._where} is not answering (no LOOP packet)")
        if len(packet) < LOOP_SIZE:
            raise StationError(f"{self._where} sent a damaged packet ({len(packet)} of "
                               f"{LOOP_SIZE} bytes)")
        if not packet.startswith(b"LOO"):
            raise StationError(f"{self._where} sent a damaged packet (no LOO header)")
        if crc16(packet) != 0:
            raise StationError(f"{self._where} sent a damaged packet (CRC mismatch)")
        if packet[OFF_PACKET_TYPE] != 0:
            raise StationError(f"{self._where} sent a LOOP packet of unknown type "
                               f"{packet[OFF_PACKET_TYPE]}")
        return packet


def reason(exc: BaseException) -> str:
    """A short cause for an I/O failure: the OS's words when there are any."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    if "returned no data" in text:  # pyserial's words for EOF on a readable port
        return "the device went away"
    return text or type(exc).__name__
