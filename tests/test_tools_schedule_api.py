"""The contract's /tools and /schedule examples against a running daemon, and bad input.

One daemon serves the module and its phone never answers; calls that ring are in
test_tool_schedule_calls.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from .conftest import PortBlocks, RunningDaemon, daemon_settings

pytestmark = [pytest.mark.telephony, pytest.mark.models]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, ports: PortBlocks, synthesizer, transcriber
           ) -> Iterator[RunningDaemon]:
    """One daemon for the shape tests; its phone never answers."""
    tmp = tmp_path_factory.mktemp("tools_api")
    phone = ports.phone(tmp / "phone", answermode="manual")
    running = RunningDaemon(daemon_settings(tmp, ports, phone.sip_port), synthesizer,
                            transcriber)
    yield running
    running.stop()
    phone.stop()


# -- tools --------------------------------------------------------------------------------------

def test_list_tools(daemon):
    status, tools = daemon.request("GET", "/tools")
    assert status == 200
    by_name = {tool["name"]: tool for tool in tools}
    assert {"CALC", "DATETIME", "SET_TIMER"} <= set(by_name)
    for tool in tools:
        assert set(tool) == {"name", "description", "parameters", "enabled"}
    assert by_name["SET_TIMER"]["parameters"]["duration"] == {"type": "integer", "required": True}
    assert by_name["SET_TIMER"]["parameters"]["message"] == {"type": "string", "required": False}
    assert by_name["DATETIME"]["parameters"] == {
        "format": {"type": "string", "required": False},
        "timezone": {"type": "string", "required": False}}


def test_get_tool_and_unknown_tool(daemon):
    status, tool = daemon.request("GET", "/tools/CALC")
    assert status == 200 and tool["name"] == "CALC" and tool["enabled"] is True
    status, body = daemon.request("GET", "/tools/INVALID")
    assert status == 404
    assert body["detail"].startswith(
        "Tool 'INVALID' not found. Use GET /tools to list available tools")
    assert "DATETIME" in body["detail"]


def test_execute_calculator_as_in_the_contract(daemon):
    status, body = daemon.request("POST", "/tools/CALC/execute",
                                  {"params": {"expression": "25 * 4 + 10"}})
    assert (status, body) == (200, {"success": True, "tool": "CALC",
                                    "message": "The result is 110", "data": {"result": 110},
                                    "spoken": False, "error": None})


def test_execute_datetime_as_in_the_contract(daemon):
    status, body = daemon.request("POST", "/tools/DATETIME/execute",
                                  {"params": {"format": "full", "timezone": "America/New_York"}})
    assert status == 200 and body["success"] is True
    assert set(body) == {"success", "tool", "message", "data", "spoken", "error"}
    assert body["data"]["timezone"] == "America/New_York"
    offset = datetime.fromisoformat(body["data"]["datetime"]).utcoffset()
    assert offset in (timedelta(hours=-5), timedelta(hours=-4))
    assert body["message"].startswith("It's ") and "Eastern" in body["message"]


@pytest.mark.parametrize(("path", "payload", "status", "words"), [
    ("/tools/CALC/execute", {"params": {}}, 400, ["expression"]),
    ("/tools/CALC/execute", {"params": {"expression": 5}}, 400, ["expression", "string"]),
    ("/tools/CALC/execute", {"params": {"expr": "1+1"}}, 400, ["expr"]),
    ("/tools/CALC/execute", {"params": "1+1"}, 400, ["params"]),
    ("/tools/CALC/execute", {"speak_result": "yes", "params": {"expression": "1"}}, 400,
     ["speak_result"]),
    ("/tools/CALC/execute", {"speak_result": True, "params": {"expression": "1"}}, 409,
     ["No call is active"]),
    ("/tools/CALC/execute", {"bogus": 1}, 400, ["bogus"]),
    ("/tools/DATETIME/execute", {"params": {"timezone": "Mars/Base"}}, 400, ["timezone"]),
    ("/tools/SET_TIMER/execute", {"params": {"duration": "5"}}, 400, ["duration", "integer"]),
    ("/tools/SET_TIMER/execute", {"params": {"duration": 0, "extension": "phone"}}, 400,
     ["duration"]),
    ("/tools/SET_TIMER/execute", {"params": {"duration": 60}}, 400, ["extension"]),
    ("/tools/CALC/call", {"params": {"expression": "1+1"}}, 400, ["extension"]),
    ("/tools/CALC/call", {"extension": "a b", "params": {"expression": "1+1"}}, 400,
     ["extension"]),
    ("/tools/CALC/call", {"extension": "phone", "ring_timeout": "5",
                          "params": {"expression": "1+1"}}, 400, ["ring_timeout"]),
    ("/tools/NOPE/call", {"extension": "phone"}, 404, ["NOPE"]),
])
def test_tool_bad_input(daemon, path, payload, status, words):
    got, body = daemon.request("POST", path, payload)
    assert got == status, body
    for word in words:
        assert word in body["detail"]


def test_calc_errors_are_results_not_http_errors(daemon):
    status, body = daemon.request("POST", "/tools/CALC/execute",
                                  {"params": {"expression": "1 / 0"}})
    assert status == 200
    assert body["success"] is False and "division by zero" in body["error"]


# -- schedules ----------------------------------------------------------------------------------

def test_schedule_weather_in_8_hours_shape(daemon):
    status, body = daemon.request("POST", "/schedule", {
        "extension": "1001", "tool": "DATETIME", "delay_seconds": 28800,
        "prefix": "Good morning! Here is the time."})
    assert status == 200, body
    assert set(body) == {"schedule_id", "status", "extension", "scheduled_for", "delay_seconds",
                         "message", "recurring"}
    assert body["status"] == "scheduled" and body["extension"] == "1001"
    assert body["delay_seconds"] == 28800 and body["recurring"] is None
    assert body["message"] == f"Call scheduled for {body['scheduled_for']}"
    when = datetime.fromisoformat(body["scheduled_for"])
    assert when.utcoffset() in (timedelta(hours=-8), timedelta(hours=-7))  # Los Angeles
    assert abs((when - datetime.now(timezone.utc)).total_seconds() - 28800) < 5


def test_daily_7am_schedule_and_listing(daemon):
    status, body = daemon.request("POST", "/schedule", {
        "extension": "1001", "tool": "DATETIME", "at_time": "07:00",
        "timezone": "America/Los_Angeles", "recurring": "daily", "prefix": "Good morning!"})
    assert status == 200, body
    assert body["recurring"] == "daily"
    assert body["scheduled_for"][11:19] == "07:00:00"
    status, listing = daemon.request("GET", "/schedule")
    assert status == 200
    item = next(i for i in listing if i["schedule_id"] == body["schedule_id"])
    assert set(item) == {"schedule_id", "extension", "scheduled_for", "remaining_seconds",
                         "message", "tool", "recurring", "status"}
    assert item["status"] == "pending" and item["tool"] == "DATETIME"
    assert 0 < item["remaining_seconds"] <= 24 * 3600
    status, one = daemon.request("GET", f"/schedule/{body['schedule_id']}")
    assert status == 200 and one["schedule_id"] == body["schedule_id"]


def test_one_time_reminder_delete_and_404(daemon):
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT09:00:00")
    status, body = daemon.request("POST", "/schedule", {
        "extension": "5551234567", "message": "This is your reminder to take your medication.",
        "at_time": tomorrow, "timezone": "America/New_York"})
    assert status == 200, body
    assert body["scheduled_for"].startswith(tomorrow)
    schedule_id = body["schedule_id"]
    assert daemon.request("DELETE", f"/schedule/{schedule_id}") == (
        200, {"success": True, "message": f"Scheduled call {schedule_id} cancelled"})
    assert daemon.request("GET", f"/schedule/{schedule_id}")[1]["status"] == "cancelled"
    status, body = daemon.request("DELETE", f"/schedule/{schedule_id}")
    assert status == 409
    assert daemon.request("GET", "/schedule/nope1234")[0] == 404
    assert daemon.request("DELETE", "/schedule/nope1234")[0] == 404


@pytest.mark.parametrize(("payload", "words"), [
    ({"extension": "1001", "delay_seconds": 60}, ["message", "tool"]),
    ({"extension": "1001", "message": "hi", "tool": "CALC", "delay_seconds": 60},
     ["message", "tool"]),
    ({"extension": "1001", "message": "hi"}, ["delay_seconds", "at_time"]),
    ({"extension": "1001", "message": "hi", "delay_seconds": 60, "at_time": "07:00"},
     ["delay_seconds", "at_time"]),
    ({"extension": "1001", "tool": "INVALID", "delay_seconds": 60},
     ["Tool 'INVALID' not found"]),
    ({"extension": "1001", "tool": "CALC", "tool_params": {"expr": "1"}, "delay_seconds": 60},
     ["tool_params", "expr"]),
    ({"extension": "10 01", "message": "hi", "delay_seconds": 60}, ["extension"]),
    ({"extension": "1001", "message": "hi", "at_time": "25:00"}, ["at_time"]),
    ({"extension": "1001", "message": "hi", "at_time": "07:00", "timezone": "Mars/Base"},
     ["timezone"]),
    ({"extension": "1001", "message": "hi", "delay_seconds": "60"}, ["delay_seconds"]),
    ({"extension": "1001", "message": "hi", "at_time": "07:00", "recurring": "hourly"},
     ["recurring"]),
    ({"extension": "1001", "message": "hi", "delay_seconds": 60, "when": "now"}, ["when"]),
])
def test_schedule_bad_input(daemon, payload, words):
    status, body = daemon.request("POST", "/schedule", payload)
    assert status == 400, body
    for word in words:
        assert word in body["detail"]
