"""CALC and DATETIME on their own."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sipassist.tools.base import ParameterError, check_params
from sipassist.tools.calc import CalcTool, evaluate
from sipassist.tools.datetime_tool import DateTimeTool


@pytest.mark.parametrize(("expression", "result"), [
    ("25 * 4 + 10", 110), ("25 times 4 plus 10", 110), ("(1 + 2) * 3", 9), ("7 / 2", 3.5),
    ("10 / 5", 2), ("2 ** 10", 1024), ("2^8", 256), ("-3 + 5", 2), ("17 % 5", 2),
    ("100 divided by 4", 25), ("sqrt(16)", 4), ("1,000 + 1", 1001), ("what is 6 x 7?", None),
    ("6 x 7", 42), ("3 squared", 9),
])
def test_calc_values(expression, result):
    if result is None:
        with pytest.raises(ValueError):
            evaluate(expression)
    else:
        assert evaluate(expression) == result


@pytest.mark.parametrize(("expression", "words"), [
    ("1 / 0", "division by zero"), ("5 % 0", "division by zero"),
    ("9 ** 9999999", "exponent is too large"), ("10 ** 200", "exponent is too large"),
    ("__import__('os').system('true')", "only numbers"), ("open('/etc/passwd')", "only numbers"),
    ("2 +", "not an arithmetic expression"), ("x" * 300, "longer than"), ("1e308 * 10", "too large"),
    ("sqrt(-1)", "negative"), ("'a' * 3", "only numbers"),
])
def test_calc_errors_are_clear(expression, words):
    result = CalcTool().execute({"expression": expression})
    assert not result.success
    assert words in result.error
    assert result.message.startswith("Sorry")


def test_calc_message_like_the_seed():
    result = CalcTool().execute({"expression": "25 * 4 + 10"})
    assert (result.success, result.message, result.data) == (True, "The result is 110",
                                                              {"result": 110})


def fixed(year, month, day, hour, minute, second=0):
    return lambda: datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


def test_datetime_full_like_the_seed():
    tool = DateTimeTool("America/Los_Angeles", clock=fixed(2025, 11, 30, 23, 30))
    result = tool.execute({"format": "full", "timezone": "America/New_York"})
    assert result.message == "It's Sunday, November 30th, 2025 at 6:30:00 PM Eastern Standard Time"
    assert result.data == {"datetime": "2025-11-30T18:30:00-05:00",
                           "timezone": "America/New_York"}


@pytest.mark.parametrize(("fmt", "zone", "message"), [
    ("time", "America/Los_Angeles", "It's 4:05 AM Pacific Daylight Time"),
    ("date", "America/Los_Angeles", "It's Wednesday, July 1st, 2026"),
    ("time", "Europe/Berlin", "It's 1:05 PM Central European Summer Time"),
    ("time", "Asia/Kolkata", "It's 4:35 PM India Standard Time"),
    ("time", "Europe/Dublin", "It's 12:05 PM Irish Standard Time"),
    ("time", "Asia/Tokyo", "It's 8:05 PM Japan Standard Time"),
    ("time", "Europe/Istanbul", "It's 2:05 PM Istanbul time"),
    ("iso", "UTC", "2026-07-01T11:05:00+00:00"),
])
def test_datetime_formats(fmt, zone, message):
    tool = DateTimeTool("UTC", clock=fixed(2026, 7, 1, 11, 5))
    assert tool.execute({"format": fmt, "timezone": zone}).message == message


def test_datetime_default_zone_and_bad_input():
    tool = DateTimeTool("America/Chicago", clock=fixed(2026, 1, 2, 12, 0))
    assert tool.execute({}).data["timezone"] == "America/Chicago"
    with pytest.raises(ParameterError, match="timezone"):
        tool.execute({"timezone": "Mars/Olympus"})
    with pytest.raises(ParameterError, match="format"):
        tool.execute({"format": "fancy"})
    with pytest.raises(ParameterError, match="format"):
        check_params(tool, {"format": 3})
    with pytest.raises(ParameterError, match="colour"):
        check_params(tool, {"colour": "red"})
