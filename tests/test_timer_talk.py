"""Timers and reminders in a dialogue: text in, scheduled calls and spoken words out.

A real Dialogue, tool registry, timer tool, scheduler and tinydb file; only the call's audio
is left out (the scheduler is not started, so nothing fires).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sipassist.calls.inbound import Dialogue, InboundCalls
from sipassist.calls.model import IN_PROGRESS, CallRecord
from sipassist.config import Settings
from sipassist.scheduling import Scheduler
from sipassist.store import Store
from sipassist.tools.calc import CalcTool
from sipassist.tools.datetime_tool import DateTimeTool
from sipassist.tools.registry import ToolRegistry
from sipassist.tools.timer import TimerTool

NOW = datetime(2026, 7, 1, 11, 5, tzinfo=timezone.utc)


class Turns:
    """A dialogue and the scheduler behind it."""

    def __init__(self, tmp_path) -> None:
        self.store = Store(tmp_path / "schedules.json")
        self.scheduler = Scheduler(self.store, fire=lambda record: None, clock=lambda: NOW)
        tools = ToolRegistry([CalcTool(), DateTimeTool("UTC"),
                              TimerTool(self.scheduler, "UTC", clock=lambda: NOW)])
        calls = InboundCalls(None, None, tools, None, None, None, Settings(), None, None)
        record = CallRecord(call_id="in-1", extension="1001", dial_uri="sip:1001@127.0.0.1",
                            message="", seq=0, status=IN_PROGRESS, direction="inbound")
        self.dialogue = Dialogue(calls, None, record)
        self.dialogue.callback = "1001"  # what [sip.trust] allows a caller on the dial domain

    def say(self, text: str) -> str:
        return " ".join(self.dialogue.answer(text))

    def pending(self) -> list[tuple[int, str]]:
        """(seconds from now, message) of each pending timer."""
        return [(round((r.next_run - NOW) / timedelta(seconds=1)), r.message)
                for r in self.scheduler.list() if r.status == "pending"]


@pytest.fixture
def turns(tmp_path):
    turns = Turns(tmp_path)
    yield turns
    turns.store.close()


@pytest.mark.parametrize(("said", "heard", "seconds", "message"), [
    ("Set a timer for three minutes.", "Timer set for 3 minutes.", 180, "Your timer is done."),
    ("Set a timer for a minute and a half.", "Timer set for 1 minute and 30 seconds.", 90,
     "Your timer is done."),
    ("Start a quarter of an hour timer.", "Timer set for 15 minutes.", 900,
     "Your timer is done."),
    ("Remind me in ten minutes to call Bob.",
     "I'll call you in 10 minutes to remind you to call Bob.", 600,
     "This is your reminder to call Bob."),
    ("Remind me to take my pills in half an hour.",
     "I'll call you in 30 minutes to remind you to take your pills.", 1800,
     "This is your reminder to take your pills."),
    ("Remind me about the oven in 20 minutes.",
     "I'll call you in 20 minutes to remind you about the oven.", 1200,
     "This is your reminder about the oven."),
])
def test_the_confirmation_says_what_was_understood(turns, said, heard, seconds, message):
    assert turns.say(said) == heard
    assert turns.pending() == [(seconds, message)]


@pytest.mark.parametrize(("correction", "seconds"), [
    ("No, three minutes.", 180), ("I said three minutes.", 180), ("No, three.", 180),
    ("Not thirty, three.", 180), ("Make it 3 minutes.", 180),
    ("Sorry, I meant five minutes.", 300), ("Now three minutes.", 180),
    ("No, I said half an hour and a minute.", 1860),
])
def test_a_correction_right_after_replaces_the_timer(turns, correction, seconds):
    assert turns.say("Set a timer for thirty minutes.") == "Timer set for 30 minutes."
    minutes = seconds // 60
    heard = turns.say(correction)
    assert heard.startswith("OK, not 30 minutes. Timer set for "), heard
    assert f"{minutes} minute" in heard
    assert turns.pending() == [(seconds, "Your timer is done.")]
    cancelled = [r for r in turns.scheduler.list() if r.status == "cancelled"]
    assert len(cancelled) == 1 and cancelled[0].next_run == NOW + timedelta(minutes=30)


def test_a_corrected_reminder_keeps_its_errand(turns):
    turns.say("Remind me in fifteen minutes to call Bob.")
    assert turns.say("No, fifty minutes.") == (
        "OK, not 15 minutes. I'll call you in 50 minutes to remind you to call Bob.")
    assert turns.pending() == [(3000, "This is your reminder to call Bob.")]


def test_only_the_very_next_turn_can_correct(turns):
    turns.say("Set a timer for thirty minutes.")
    assert turns.say("What's 6 times 7?") == "The result is 42"
    turns.say("No, three minutes.")  # too late: not taken as a correction
    assert turns.pending() == [(1800, "Your timer is done.")]


def test_a_no_without_a_new_duration_changes_nothing(turns):
    turns.say("Set a timer for thirty minutes.")
    assert "Timer set" not in turns.say("No, thirty minutes.")
    assert turns.pending() == [(1800, "Your timer is done.")]


def test_two_timers_in_a_row_are_both_kept(turns):
    turns.say("Set a timer for 5 minutes.")
    assert turns.say("Set a timer for 10 minutes.") == "Timer set for 10 minutes."
    assert sorted(turns.pending()) == [(300, "Your timer is done."), (600, "Your timer is done.")]
