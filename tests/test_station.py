"""The station drivers and reader against a simulated station on a real pty (no mocks)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import serial

from sipassist.station import StationError, StationReader, StationSettings
from sipassist.station.davis import DavisDriver, crc16, decode_loop
from sipassist.station.jsonl import JsonlDriver, parse_line

from .station_sim import DavisSim, JsonlSim, LoopValues, ManualClock, crc_ccitt, loop_packet

TIMEOUT = 0.3  # seconds; the pty answers in microseconds
NOW = datetime(2025, 11, 30, 21, 30, tzinfo=timezone.utc)


def station(port: str | Path, protocol: str = "davis", **overrides: object) -> StationSettings:
    return StationSettings(protocol=protocol, port=str(port), timeout_seconds=TIMEOUT,
                           **overrides)


def plug(link: Path, sim: DavisSim | JsonlSim) -> None:
    """Point the symlink the reader opens at this simulator's tty (the cable goes in)."""
    if link.is_symlink():
        link.unlink()
    link.symlink_to(sim.path)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def readers():
    made: list[StationReader] = []

    def make(settings: StationSettings, clock: ManualClock) -> StationReader:
        made.append(StationReader(settings, clock))
        return made[-1]

    yield make
    for reader in made:
        reader.close()


@pytest.fixture
def davis():
    sims: list[DavisSim] = []

    def make(**kwargs: object) -> DavisSim:
        sims.append(DavisSim(**kwargs).start())
        return sims[-1]

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def jsonl():
    sims: list[JsonlSim] = []

    def make(**kwargs: object) -> JsonlSim:
        sims.append(JsonlSim(**kwargs).start())
        return sims[-1]

    yield make
    for sim in sims:
        sim.stop()


# -- CRC and packet layout --------------------------------------------------------------------

def test_crc_known_answers() -> None:
    assert crc16(b"123456789") == 0x31C3  # the CRC-16/XMODEM check value
    # The Davis protocol document's own example: the DMPAFT time stamp C6 CE A2 03.
    assert crc16(bytes([0xC6, 0xCE, 0xA2, 0x03])) == 0xE2B4
    payload = bytes(range(97))
    crc = crc16(payload)
    assert crc == crc_ccitt(payload)  # the table matches a bit-by-bit computation
    assert crc16(payload + crc.to_bytes(2, "big")) == 0
    assert crc16(payload + (crc ^ 1).to_bytes(2, "big")) != 0


def test_loop_packet_decodes_from_documented_offsets() -> None:
    values = LoopValues(temp_f=-12.3, humidity=55, wind_mph=12, wind_dir_deg=315,
                        rain_clicks_per_hour=25, barometer_inhg=29.921)
    packet = loop_packet(values)
    assert len(packet) == 99 and packet.startswith(b"LOO") and crc16(packet) == 0
    reading = decode_loop(packet, NOW)
    assert reading.temp_f == pytest.approx(-12.3)
    assert reading.humidity == 55
    assert reading.wind_mph == 12
    assert reading.wind_dir_deg == 315
    assert reading.rain_rate_in_hr == pytest.approx(0.25)
    assert reading.barometer_inhg == pytest.approx(29.921)
    assert reading.dew_point_f is not None and reading.dew_point_f < reading.temp_f
    assert reading.observed_at == NOW


def test_dashed_values_are_missing() -> None:
    reading = decode_loop(loop_packet(LoopValues(
        humidity=None, wind_mph=None, wind_dir_deg=None, rain_clicks_per_hour=None,
        barometer_inhg=None)), NOW)
    assert (reading.humidity, reading.wind_mph, reading.wind_dir_deg, reading.rain_rate_in_hr,
            reading.barometer_inhg, reading.dew_point_f) == (None,) * 6
    north = decode_loop(loop_packet(LoopValues(wind_mph=5, wind_dir_deg=360)), NOW)
    assert north.wind_dir_deg == 0
    with pytest.raises(StationError, match="no outside temperature"):
        decode_loop(loop_packet(LoopValues(temp_f=None)), NOW)


# -- Davis over a pty -------------------------------------------------------------------------

def test_davis_reading_over_pty(davis, readers, clock) -> None:
    sim = davis(values=LoopValues(temp_f=72.3, humidity=55, wind_mph=12, wind_dir_deg=315,
                                  rain_clicks_per_hour=3, barometer_inhg=29.92))
    reader = readers(station(sim.path), clock)
    reading = reader.current()
    assert reading.temp_f == pytest.approx(72.3)
    assert (reading.humidity, reading.wind_mph, reading.wind_dir_deg) == (55, 12, 315)
    assert reading.rain_rate_in_hr == pytest.approx(0.03)
    assert reading.barometer_inhg == pytest.approx(29.92)
    assert reading.observed_at == NOW
    assert sim.commands == [b"", b"LOOP 1"]  # wake-up, then one LOOP packet
    sim.values = LoopValues(temp_f=71.0)
    assert reader.current().temp_f == pytest.approx(71.0)  # polled afresh every time


def test_davis_driver_on_its_own(davis) -> None:
    sim = davis()
    with serial.serial_for_url(sim.path, baudrate=19200, timeout=TIMEOUT) as link:
        reading = DavisDriver(link, port=sim.path, timeout=TIMEOUT).read()
    assert (reading.temp_f, reading.humidity, reading.wind_mph) == (44.0, 98, 0)
    assert reading.observed_at.tzinfo is not None


def test_davis_faults_then_recovery(davis, readers, clock) -> None:
    sim = davis(mode="silent")
    reader = readers(station(sim.path), clock)
    started = time.monotonic()
    with pytest.raises(StationError, match=f"on {sim.path} is not answering"):
        reader.current()
    assert time.monotonic() - started < TIMEOUT + 0.5
    assert sim.wait_for_commands(3) == [b"", b"", b""]  # three wake-up tries, then it gave up

    sim.mode = "garbage"
    with pytest.raises(StationError, match="answers with garbage"):
        reader.current()

    sim.mode = "bad_crc"
    with pytest.raises(StationError, match=r"sent a damaged packet \(CRC mismatch\)"):
        reader.current()

    sim.mode = "ok"
    assert reader.current().temp_f == pytest.approx(44.0)
    assert reader.connected  # none of those faults needed a new connection


def test_davis_unplug_and_replug(davis, readers, clock, tmp_path) -> None:
    link = tmp_path / "ttyWX"
    first = davis(values=LoopValues(temp_f=50.0))
    plug(link, first)
    reader = readers(station(link), clock)
    assert reader.current().temp_f == pytest.approx(50.0)

    first.unplug()
    with pytest.raises(StationError, match="disconnected") as lost:
        reader.current()
    assert lost.value.lost and not reader.connected

    second = davis(values=LoopValues(temp_f=51.0))
    plug(link, second)  # the cable goes back in: a new tty behind the same name
    assert reader.current().temp_f == pytest.approx(51.0)


def test_missing_device_is_retried_with_backoff(davis, readers, clock, tmp_path) -> None:
    link = tmp_path / "ttyWX"
    link.symlink_to(tmp_path / "nothing-here")
    reader = readers(station(link), clock)
    with pytest.raises(StationError, match="not connected .*is it plugged in"):
        reader.current()

    sim = davis()
    plug(link, sim)
    with pytest.raises(StationError, match="trying again in 1 s"):
        reader.current()  # backing off: the port is not even tried
    assert sim.commands == []
    clock.advance(1.0)
    assert reader.current().temp_f == pytest.approx(44.0)


def test_backoff_grows_and_resets(readers, clock, tmp_path) -> None:
    reader = readers(station(tmp_path / "absent"), clock)
    for wait in (1, 2, 4, 8):
        with pytest.raises(StationError, match="is not connected"):
            reader.current()
        clock.advance(wait - 0.5)
        with pytest.raises(StationError, match="trying again in 1 s"):
            reader.current()
        clock.advance(0.5)


def test_concurrent_requests_share_one_port(davis, readers, clock) -> None:
    sim = davis()
    reader = readers(station(sim.path), clock)
    results: list[object] = []

    def ask() -> None:
        for _ in range(3):
            try:
                results.append(reader.current().temp_f)
            except StationError as exc:  # pragma: no cover - would fail the assertion
                results.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [44.0] * 12


# -- JSON lines -------------------------------------------------------------------------------

def test_parse_line_units() -> None:
    reading = parse_line(b'{"temp_c": 20, "humidity": 50, "wind_kmh": 16.09344, '
                         b'"wind_dir": 270, "rain_mm_hr": 2.54, "pressure_hpa": 1013.25}\r\n',
                         NOW)
    assert reading.temp_f == pytest.approx(68.0)
    assert reading.wind_mph == pytest.approx(10.0)
    assert reading.wind_dir_deg == 270
    assert reading.rain_rate_in_hr == pytest.approx(0.1)
    assert reading.barometer_inhg == pytest.approx(29.92, abs=0.01)
    assert reading.dew_point_f == pytest.approx(48.6, abs=0.2)
    assert parse_line('{"temp_f": 44, "wind_ms": 1}', NOW).wind_mph == pytest.approx(2.237,
                                                                                     abs=0.01)
    bare = parse_line('{"temp_f": 44.1, "humidity": null, "extra": "ignored"}', NOW)
    assert (bare.humidity, bare.wind_mph, bare.dew_point_f) == (None, None, None)


@pytest.mark.parametrize("line", [
    b"", b"booting...", b"\xff\xfe{", b"[1, 2]", b'{"humidity": 50}', b'{"temp_f": "warm"}',
    b'{"temp_f": true}', b'{"temp_f": NaN}', b'{"temp_f": 999}', b'{"temp_f": 40, "humidity": -3}',
    b'{"temp_f": 44.1, "hum',
])
def test_parse_line_rejects_garbage(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_line(line, NOW)


def test_jsonl_reading_over_pty(jsonl, readers, clock) -> None:
    sim = jsonl(payload={"temp_f": 44.1, "humidity": 98, "wind_mph": 0, "rain_in_hr": 0})
    reader = readers(station(sim.path, "jsonl"), clock)
    reading = reader.current()
    assert (reading.temp_f, reading.humidity, reading.wind_mph, reading.rain_rate_in_hr) == (
        44.1, 98, 0, 0)
    assert reading.observed_at == NOW


def test_jsonl_driver_keeps_the_latest_line(jsonl) -> None:
    sim = jsonl(payload={"temp_c": 10.0, "wind_kmh": 0}, interval=0.01)
    with serial.serial_for_url(sim.path, baudrate=9600, timeout=TIMEOUT) as link:
        driver = JsonlDriver(link, port=sim.path, timeout=TIMEOUT)
        assert driver.read().temp_f == pytest.approx(50.0)
        sim.mode = "garbage"
        sim.payload = {"temp_c": 20.0}
        with pytest.raises(StationError, match="no valid reading .*not readings"):
            driver.read()
        sim.mode = "ok"
        assert driver.read().temp_f == pytest.approx(68.0)


def test_jsonl_garbage_then_recovery(jsonl, readers, clock) -> None:
    sim = jsonl(mode="garbage")
    reader = readers(station(sim.path, "jsonl"), clock)
    with pytest.raises(StationError, match="sent no valid reading in 0.3 s"):
        reader.current()
    sim.mode = "ok"
    assert reader.current().temp_f == pytest.approx(44.1)


def test_jsonl_silent_station(jsonl, readers, clock) -> None:
    sim = jsonl(mode="silent")
    reader = readers(station(sim.path, "jsonl"), clock)
    started = time.monotonic()
    with pytest.raises(StationError, match="sent no valid reading"):
        reader.current()
    assert time.monotonic() - started < TIMEOUT + 0.5


def test_jsonl_stale_reading_is_not_current(jsonl, readers, clock) -> None:
    sim = jsonl(limit=0)
    reader = readers(station(sim.path, "jsonl", stale_seconds=60), clock)
    reader.start()  # the port is open and listened to (opening it flushes older input)
    sim.limit = 1  # the station prints one line, then nothing more
    assert reader.current().temp_f == pytest.approx(44.1)
    clock.advance(59)
    assert reader.current().temp_f == pytest.approx(44.1)  # still young enough
    clock.advance(2)
    with pytest.raises(StationError, match="has sent no reading for 61 s"):
        reader.current()
    sim.payload = {"temp_f": 45.0}
    sim.limit = 2  # one more line
    assert reader.current().temp_f == pytest.approx(45.0)


def test_jsonl_unplug_and_replug(jsonl, readers, clock, tmp_path) -> None:
    link = tmp_path / "ttyACM-station"
    first = jsonl(payload={"temp_f": 60.0})
    plug(link, first)
    reader = readers(station(link, "jsonl", stale_seconds=30), clock)
    assert reader.current().temp_f == pytest.approx(60.0)

    first.unplug()
    clock.advance(31)  # whatever was read before is too old now
    with pytest.raises(StationError, match="disconnected") as lost:
        reader.current()
    assert lost.value.lost

    second = jsonl(payload={"temp_f": 61.0})
    plug(link, second)
    assert reader.current().temp_f == pytest.approx(61.0)


def test_close_stops_the_listener(jsonl, clock) -> None:
    sim = jsonl()
    reader = StationReader(station(sim.path, "jsonl"), clock)
    reader.current()
    assert any(t.name == "station-jsonl" for t in threading.enumerate())
    reader.close()
    assert not reader.connected
    with pytest.raises(StationError, match="closed"):
        reader.current()


def test_no_station_configured(readers, clock) -> None:
    reader = readers(StationSettings(), clock)
    with pytest.raises(StationError, match="no weather station is configured"):
        reader.current()


def test_settings_defaults_and_validation() -> None:
    settings = StationSettings()
    assert (settings.protocol, settings.port, settings.baud, settings.name) == (
        "none", "/dev/ttyUSB0", 0, "the weather station")
    assert not settings.enabled
    assert StationSettings(protocol="davis").baudrate == 19200
    assert StationSettings(protocol="jsonl").baudrate == 9600
    assert StationSettings(protocol="jsonl", baud=115200).baudrate == 115200
    settings.validate()
    for bad, key in ((StationSettings(protocol="vantage"), "station.protocol"),
                     (StationSettings(baud=1234), "station.baud"),
                     (StationSettings(timezone="Mars/Olympus"), "station.timezone"),
                     (StationSettings(timeout_seconds=0), "station.timeout_seconds")):
        with pytest.raises(ValueError, match=key):
            bad.validate()
