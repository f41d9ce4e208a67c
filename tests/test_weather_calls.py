"""WEATHER through the running daemon, read from a Davis station on a pty."""

from __future__ import annotations

import re

import pytest


from .audio_helpers import heard_audio
from .station_sim import DavisSim, LoopValues

RATE = 16000  # the daemon's audio rate, at which the synthesizer fixture speaks

pytestmark = [pytest.mark.telephony, pytest.mark.models]


@pytest.fixture
def station():
    with DavisSim(LoopValues(temp_f=44.0, humidity=98, wind_mph=0)) as sim:
        yield sim


def station_settings(sim: DavisSim) -> dict:
    return {"station": {"protocol": "davis", "port": sim.path, "name": "Storm Lake",
                        "timeout_seconds": 1.5},
            "tools": {"timezone": "America/Chicago"}}


def test_execute_weather_as_in_the_contract(start_daemon, phone, station):
    daemon = start_daemon(phone, **station_settings(station))
    status, body = daemon.request("POST", "/tools/WEATHER/execute", {})
    assert status == 200, body
    assert body["success"] is True and body["error"] is None and body["spoken"] is False
    assert body["data"] == {"temp_f": 44, "feels_like_f": 44, "humidity": 98, "wind_mph": 0,
                            "conditions": "foggy"}
    assert re.fullmatch(r"At Storm Lake, as of \d{1,2}:\d\d [ap]m, it's 44 degrees with foggy "
                        r"conditions\. Wind is calm\.", body["message"]), body["message"]
    tool = daemon.request("GET", "/tools/WEATHER")[1]
    assert tool == {"name": "WEATHER", "enabled": True, "parameters": {},
                    "description": "Get current weather conditions from the local weather station"}

    # Unplugged: a clear tool error, not an HTTP failure; plugged in again: readings return.
    station.mode = "silent"
    status, body = daemon.request("POST", "/tools/WEATHER/execute", {})
    assert status == 200 and body["success"] is False
    assert "station" in body["error"] and body["message"].startswith("Sorry")
    station.mode = "ok"
    status, body = daemon.request("POST", "/tools/WEATHER/execute", {})
    assert body["success"] is True, body


def test_weather_without_a_station_is_disabled(start_daemon, phone):
    daemon = start_daemon(phone)
    assert daemon.request("GET", "/tools/WEATHER")[1]["enabled"] is False
    status, body = daemon.request("POST", "/tools/WEATHER/execute", {})
    assert status == 409 and "[station]" in body["detail"]


def test_weather_call_speaks_prefix_report_suffix(start_daemon, phone, station, webhook,
                                                  synthesizer):
    daemon = start_daemon(phone, **station_settings(station))
    prefix, suffix = "Good morning! Here is your weather update.", "Have a great day!"
    status, body = daemon.request("POST", "/tools/WEATHER/call", {
        "extension": "phone", "prefix": prefix, "suffix": suffix,
        "callback_url": webhook.url})
    assert status == 200, body
    assert body["tool"] == "WEATHER" and body["tool_success"] is True
    assert body["tool_message"].startswith("At Storm Lake")
    assert webhook.wait(1, timeout=60)[0]["status"] == "completed"
    # The phone heard the very audio of prefix, report and suffix (Whisper
    # mishears "Storm Lake" and times on a phone line; the audio itself is compared).
    spoken = f"{prefix} {body['tool_message']} {suffix}"
    assert heard_audio(phone.recording(), synthesizer.synthesize(spoken), RATE) > 0.6
