"""The WEATHER tool: NWS formulas, honest conditions, the spoken report, and failures."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from sipassist.station import StationReader, StationSettings
from sipassist.station.reading import (Reading, conditions, dew_point_f, feels_like_f,
                                       heat_index_f, wind_chill_f)
from sipassist.tools.base import check_params
from sipassist.tools.weather import UNREACHABLE, WeatherTool, describe, spoken_time

from .station_sim import DavisSim, LoopValues, ManualClock

CHICAGO = ZoneInfo("America/Chicago")
EVENING = datetime(2025, 11, 30, 21, 30, tzinfo=CHICAGO)


def reading(temp_f: float, humidity: float | None = None, wind_mph: float | None = None,
            **kwargs: object) -> Reading:
    return Reading(temp_f=temp_f, humidity=humidity, wind_mph=wind_mph,
                   observed_at=kwargs.pop("observed_at", EVENING), **kwargs)


@pytest.fixture
def sim():
    with DavisSim() as simulator:
        yield simulator


@pytest.fixture
def tool_for(sim):
    tools: list[WeatherTool] = []

    def make(clock: ManualClock, **overrides: object) -> WeatherTool:
        settings = StationSettings(protocol="davis", port=sim.path, timeout_seconds=0.3,
                                   **overrides)
        tools.append(WeatherTool(settings, StationReader(settings, clock)))
        return tools[-1]

    yield make
    for tool in tools:
        tool.close()


# -- formulas ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("temp", "rh", "expected"), [
    (90, 70, 106), (80, 40, 80), (90, 40, 91), (96, 40, 101), (84, 90, 98), (86, 90, 105),
    (100, 50, 118), (110, 40, 136),
])
def test_heat_index_matches_nws_table(temp: float, rh: float, expected: int) -> None:
    assert round(heat_index_f(temp, rh)) == expected


def test_heat_index_below_80_uses_the_simple_formula() -> None:
    assert heat_index_f(70, 50) == pytest.approx(0.5 * (70 + 61 + 2 * 1.2 + 50 * 0.094))


@pytest.mark.parametrize(("temp", "wind", "expected"), [
    (20, 15, 6), (0, 30, -26), (40, 5, 36), (-10, 20, -35), (30, 60, 10),
])
def test_wind_chill_matches_nws_table(temp: float, wind: float, expected: int) -> None:
    assert round(wind_chill_f(temp, wind)) == expected


def test_wind_chill_only_where_defined() -> None:
    assert wind_chill_f(51, 30) == 51  # too warm
    assert wind_chill_f(20, 2) == 20  # too little wind


def test_dew_point_magnus() -> None:
    assert dew_point_f(68, 50) == pytest.approx(48.7, abs=0.2)
    assert dew_point_f(86, 70) == pytest.approx(75.1, abs=0.3)
    assert dew_point_f(50, 100) == pytest.approx(50.0)
    assert reading(44, 98).dew_point_f == pytest.approx(43.5, abs=0.2)


def test_feels_like() -> None:
    assert feels_like_f(reading(44, 98, 0)) == 44  # the documented example
    assert round(feels_like_f(reading(20, 50, 15))) == 6  # wind chill
    assert round(feels_like_f(reading(90, 70, 3))) == 106  # heat index
    assert feels_like_f(reading(70, 90, 2)) == 70  # mild: just the temperature


# -- conditions -------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "expected"), [
    (dict(temp_f=44, humidity=98, wind_mph=0), "foggy"),
    (dict(temp_f=44, humidity=93, wind_mph=2, dew_point_f=42.5), "foggy"),  # 1.5 F spread
    (dict(temp_f=44, humidity=98, wind_mph=12), "breezy"),  # moving air: mist, not fog
    (dict(temp_f=50, humidity=99, wind_mph=0, rain_rate_in_hr=0.02), "drizzly"),
    (dict(temp_f=50, humidity=90, wind_mph=5, rain_rate_in_hr=0.15), "rainy"),
    (dict(temp_f=50, humidity=90, wind_mph=25, rain_rate_in_hr=0.5), "heavy rain"),
    (dict(temp_f=60, humidity=40, wind_mph=25), "windy"),
    (dict(temp_f=85, humidity=60, wind_mph=4), "humid"),  # dew point ~69 F
    (dict(temp_f=60, humidity=40, wind_mph=3), "calm"),
    (dict(temp_f=60, humidity=40, rain_rate_in_hr=0.0), "dry"),
    (dict(temp_f=60), "unknown"),
])
def test_conditions(kwargs: dict, expected: str) -> None:
    assert conditions(reading(**kwargs)) == expected


def test_conditions_never_claim_to_see_the_sky() -> None:
    said = {conditions(reading(temp_f=t, humidity=h, wind_mph=w, rain_rate_in_hr=r))
            for t in (-20, 30, 60, 90, 110) for h in (None, 5, 50, 96, 100)
            for w in (None, 0, 8, 15, 40) for r in (None, 0, 0.01, 0.2, 2)}
    assert said <= {"heavy rain", "rainy", "drizzly", "windy", "foggy", "humid", "breezy",
                    "calm", "dry", "unknown"}
    assert not said & {"sunny", "clear", "cloudy", "overcast", "partly cloudy"}


# -- the spoken report ------------------------------------------------------------------------

def test_documented_example(sim, tool_for) -> None:
    sim.values = LoopValues(temp_f=44.0, humidity=98, wind_mph=0)
    tool = tool_for(ManualClock(EVENING), name="Storm Lake", timezone="America/Chicago")
    result = tool.execute({})
    assert result.success and result.error is None
    assert result.message == ("At Storm Lake, as of 9:30 pm, it's 44 degrees with foggy "
                              "conditions. Wind is calm.")
    assert result.data == {"temp_f": 44, "feels_like_f": 44, "humidity": 98, "wind_mph": 0,
                           "conditions": "foggy"}


def test_time_is_spoken_in_the_station_zone(sim, tool_for) -> None:
    utc = datetime(2025, 12, 1, 3, 30, tzinfo=timezone.utc)  # 9:30 pm in Iowa
    tool = tool_for(ManualClock(utc), name="Storm Lake", timezone="America/Chicago")
    assert tool.execute({}).message.startswith("At Storm Lake, as of 9:30 pm, ")


@pytest.mark.parametrize(("hour", "minute", "spoken"), [
    (0, 15, "12:15 am"), (7, 0, "7:00 am"), (12, 5, "12:05 pm"), (23, 59, "11:59 pm"),
])
def test_spoken_time(hour: int, minute: int, spoken: str) -> None:
    at = datetime(2025, 11, 30, hour, minute, tzinfo=CHICAGO)
    assert spoken_time(reading(50, observed_at=at), CHICAGO) == spoken


def test_wind_direction_and_feels_like() -> None:
    cold = reading(20, 50, 15, wind_dir_deg=315)
    assert describe(cold, "the farm", CHICAGO) == (
        "At the farm, as of 9:30 pm, it's 20 degrees but feels like 6, with breezy "
        "conditions. Wind is 15 miles per hour from the northwest.")
    hot = reading(90, 70, 1.2)
    assert describe(hot, "the farm", CHICAGO) == (
        "At the farm, as of 9:30 pm, it's 90 degrees but feels like 106, with humid "
        "conditions. Wind is 1 mile per hour.")
    freezing = reading(-4.6, None, 0.4)
    assert describe(freezing, "the farm", CHICAGO) == (
        "At the farm, as of 9:30 pm, it's minus 5 degrees. Wind is calm.")
    storm = reading(58, 95, 9, wind_dir_deg=180, rain_rate_in_hr=0.6)
    assert describe(storm, "the farm", CHICAGO) == (
        "At the farm, as of 9:30 pm, it's 58 degrees with heavy rain. Wind is 9 miles per "
        "hour from the south.")


# -- the tool ---------------------------------------------------------------------------------

def test_tool_description() -> None:
    tool = WeatherTool(StationSettings(protocol="davis"))
    assert tool.name == "WEATHER"
    assert tool.description == "Get current weather conditions from the local weather station"
    assert {p.name: p.describe() for p in tool.parameters} == {}
    assert tool.enabled
    assert check_params(tool, {}) == {}


def test_tool_disabled_without_a_station() -> None:
    tool = WeatherTool(StationSettings())
    assert not tool.enabled
    result = tool.execute({})
    assert not result.success and "no weather station is configured" in result.error


def test_tool_failure_when_unplugged(sim, tool_for) -> None:
    tool = tool_for(ManualClock(EVENING))
    assert tool.execute({}).success
    sim.unplug()
    result = tool.execute({})
    assert not result.success
    assert result.message == UNREACHABLE == "Sorry, I can't reach the weather station right now."
    assert result.error.startswith(f"the weather station on {sim.path} was disconnected")
    assert result.data == {}
    again = tool.execute({})  # the tty is gone: the port cannot be opened
    assert not again.success and "not connected" in again.error


def test_tool_failure_when_silent(sim, tool_for) -> None:
    sim.mode = "silent"
    result = tool_for(ManualClock(EVENING)).execute({})
    assert (result.success, result.message) == (False, UNREACHABLE)
    assert result.error == f"the weather station on {sim.path} is not answering"
