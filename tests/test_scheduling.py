"""Scheduled calls: request checking, DST maths, response shapes, and the Scheduler thread.

No mocks: real Store files under tmp_path, a fake clock the tests advance, and Scheduler.wake()
to make the thread look at it. Waits are upper bounds on real events, never sleeps.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sipassist.scheduling import (
    CANCELLED, COMPLETED, FAILED, MISSED, PENDING, TABLE, ScheduleRecord,
    ScheduleRequestError, Scheduler, SchedulerFull, cancelled_response, created_response,
    detail_response, list_item, next_occurrence, parse_request, webhook_payload,
)
from sipassist.store import Store

UTC = timezone.utc
LA = ZoneInfo("America/Los_Angeles")
TOOLS = {"WEATHER", "DATETIME", "CALC"}
WAIT = 5.0  # seconds; an upper bound for the thread to act, far below its 30 s max wait

CREATED_KEYS = {"schedule_id", "status", "extension", "scheduled_for", "delay_seconds",
                "message", "recurring"}
LIST_KEYS = {"schedule_id", "extension", "scheduled_for", "remaining_seconds", "message",
             "tool", "recurring", "status"}


def at(text: str) -> datetime:
    """An aware datetime from ISO text with an offset."""
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None
    return moment


# -- parse_request and the response shapes: the contract's examples ---------------------------

def test_seed_weather_in_8_hours() -> None:
    now = at("2025-11-30T23:00:00-08:00")
    record = parse_request({"extension": "1001", "tool": "WEATHER", "delay_seconds": 28800,
                            "prefix": "Good morning! Here is your weather."}, now, TOOLS)
    response = created_response(record, now)
    assert set(response) == CREATED_KEYS
    assert re.fullmatch(r"[0-9a-f]{8}", response["schedule_id"])
    assert response == {
        "schedule_id": record.schedule_id,
        "status": "scheduled",
        "extension": "1001",
        "scheduled_for": "2025-12-01T07:00:00-08:00",
        "delay_seconds": 28800,
        "message": "Call scheduled for 2025-12-01T07:00:00-08:00",
        "recurring": None,
    }
    assert record.tool == "WEATHER" and record.tool_params == {} and record.message is None
    assert record.prefix == "Good morning! Here is your weather."
    assert record.timezone == "America/Los_Angeles" and record.at_time is None
    assert record.status == PENDING and record.runs == 0
    assert record.next_run == at("2025-12-01T15:00:00+00:00")
    assert record.next_run.tzinfo == UTC


def test_seed_daily_7am_weather() -> None:
    now = at("2025-11-30T21:00:00-08:00")
    record = parse_request({"extension": "1001", "tool": "WEATHER", "at_time": "07:00",
                            "timezone": "America/Los_Angeles", "recurring": "daily",
                            "prefix": "Good morning!"}, now, TOOLS)
    assert created_response(record, now) == {
        "schedule_id": record.schedule_id,
        "status": "scheduled",
        "extension": "1001",
        "scheduled_for": "2025-12-01T07:00:00-08:00",
        "delay_seconds": 36000,
        "message": "Call scheduled for 2025-12-01T07:00:00-08:00",
        "recurring": "daily",
    }
    assert record.at_time == "07:00" and record.recurring == "daily"


def test_seed_one_time_medication_reminder_in_new_york() -> None:
    now = at("2025-12-01T05:00:00-05:00")
    record = parse_request({"extension": "5551234567",
                            "message": "This is your reminder to take your medication.",
                            "at_time": "2025-12-01T09:00:00",
                            "timezone": "America/New_York"}, now, TOOLS)
    response = created_response(record, now)
    assert response["scheduled_for"] == "2025-12-01T09:00:00-05:00"
    assert response["delay_seconds"] == 4 * 3600
    assert response["recurring"] is None
    assert record.next_run == at("2025-12-01T14:00:00+00:00")
    assert record.at_time is None and record.timezone == "America/New_York"

    item = list_item(record, now + timedelta(hours=1))
    assert item == {
        "schedule_id": record.schedule_id,
        "extension": "5551234567",
        "scheduled_for": "2025-12-01T09:00:00-05:00",
        "remaining_seconds": 3 * 3600,
        "message": "This is your reminder to take your medication.",
        "tool": None,
        "recurring": None,
        "status": "pending",
    }
    assert list_item(record, now + timedelta(days=1))["remaining_seconds"] == 0


def test_detail_response_adds_the_other_fields() -> None:
    now = at("2025-11-30T21:00:00-08:00")
    record = parse_request({"extension": "1001", "tool": "weather", "tool_params": {"a": 1},
                            "at_time": "07:00", "recurring": "weekdays", "suffix": "Bye.",
                            "callback_url": "http://127.0.0.1:9/hook"}, now, TOOLS)
    detail = detail_response(record, now)
    assert set(detail) == LIST_KEYS | {"prefix", "suffix", "timezone", "tool_params",
                                       "created_at", "last_run_at", "runs", "last_call_id",
                                       "callback_url"}
    assert detail["tool"] == "WEATHER"  # stored as registered
    assert detail["tool_params"] == {"a": 1}
    assert detail["suffix"] == "Bye." and detail["prefix"] is None
    assert detail["timezone"] == "America/Los_Angeles"
    assert detail["created_at"] == "2025-12-01T05:00:00Z"
    assert detail["last_run_at"] is None and detail["runs"] == 0
    assert detail["callback_url"] == "http://127.0.0.1:9/hook"
    assert json.loads(json.dumps(detail)) == detail


def test_cancelled_response_and_webhook_payload() -> None:
    assert cancelled_response("a1b2c3d4") == {
        "success": True, "message": "Scheduled call a1b2c3d4 cancelled"}
    now = at("2025-11-30T21:00:00-08:00")
    record = parse_request({"extension": "1001", "tool": "WEATHER", "at_time": "07:00",
                            "recurring": "daily"}, now, TOOLS)
    assert webhook_payload(record, "completed", at("2025-12-01T07:00:45-08:00")) == {
        "schedule_id": record.schedule_id,
        "status": "completed",
        "extension": "1001",
        "tool": "WEATHER",
        "recurring": "daily",
        "timestamp": "2025-12-01T15:00:45Z",
    }


def test_record_survives_a_document_round_trip() -> None:
    now = at("2025-11-30T21:00:00.123456-08:00")
    record = parse_request({"extension": "1001", "tool": "WEATHER", "at_time": "07:00",
                            "recurring": "weekends", "prefix": "Hi"}, now, TOOLS)
    doc = json.loads(json.dumps(record.to_document()))
    assert doc["next_run"] == "2025-12-06T15:00:00Z"
    assert ScheduleRecord.from_document(doc) == record


def test_hh_mm_already_past_today_is_tomorrow() -> None:
    now = at("2025-12-01T08:00:00-08:00")
    later = parse_request({"extension": "1", "message": "m", "at_time": "09:15"}, now, TOOLS)
    assert created_response(later, now)["scheduled_for"] == "2025-12-01T09:15:00-08:00"
    past = parse_request({"extension": "1", "message": "m", "at_time": "07:00"}, now, TOOLS)
    assert created_response(past, now)["scheduled_for"] == "2025-12-02T07:00:00-08:00"
    assert created_response(past, now)["delay_seconds"] == 23 * 3600
    same = parse_request({"extension": "1", "message": "m", "at_time": "08:00"}, now, TOOLS)
    assert created_response(same, now)["scheduled_for"] == "2025-12-02T08:00:00-08:00"


def test_iso_with_offset_is_that_instant_shown_in_the_schedule_zone() -> None:
    now = at("2025-12-01T00:00:00+00:00")
    record = parse_request({"extension": "1", "message": "m",
                            "at_time": "2025-12-01T09:00:00-05:00"}, now, TOOLS)
    assert record.next_run == at("2025-12-01T14:00:00+00:00")
    assert created_response(record, now)["scheduled_for"] == "2025-12-01T06:00:00-08:00"
    utc = parse_request({"extension": "1", "message": "m", "at_time": "2025-12-01T14:00:00Z",
                         "timezone": "UTC"}, now, TOOLS)
    assert created_response(utc, now)["scheduled_for"] == "2025-12-01T14:00:00+00:00"


def test_recurring_iso_at_time_uses_its_wall_clock_time() -> None:
    now = at("2025-12-01T00:00:00-08:00")
    # Saturday 07:30; weekdays: the first run is Monday at 07:30.
    record = parse_request({"extension": "1", "message": "m", "recurring": "weekdays",
                            "at_time": "2025-12-06T07:30:00"}, now, TOOLS)
    assert record.at_time == "07:30"
    assert created_response(record, now)["scheduled_for"] == "2025-12-08T07:30:00-08:00"
    # With an offset: its wall time in the schedule's zone.
    offset = parse_request({"extension": "1", "message": "m", "recurring": "daily",
                            "at_time": "2025-12-02T10:00:00-05:00"}, now, TOOLS)
    assert offset.at_time == "07:00"
    assert created_response(offset, now)["scheduled_for"] == "2025-12-02T07:00:00-08:00"


def test_nulls_count_as_absent_and_empty_affixes_as_none() -> None:
    now = at("2025-12-01T00:00:00-08:00")
    record = parse_request({"extension": "1", "message": "m", "tool": None,
                            "delay_seconds": 5, "at_time": None, "recurring": None,
                            "prefix": "", "timezone": None}, now, TOOLS)
    assert record.tool is None and record.prefix is None and record.tool_params is None
    assert record.timezone == "America/Los_Angeles"


BASE = {"extension": "1001", "message": "Hello", "delay_seconds": 60}


@pytest.mark.parametrize(("changes", "field", "detail"), [
    ({"tool": "WEATHER"}, "message", "give either message or tool, not both"),
    ({"message": None}, "message", "give one of message or tool"),
    ({"at_time": "07:00"}, "delay_seconds", "give either delay_seconds or at_time, not both"),
    ({"delay_seconds": None}, "delay_seconds", "give one of delay_seconds or at_time"),
    ({"timezone": "Mars/Base"}, "timezone", None),
    ({"timezone": "../../etc/passwd"}, "timezone", None),
    ({"timezone": 5}, "timezone", None),
    ({"delay_seconds": None, "at_time": "25:00"}, "at_time", None),
    ({"delay_seconds": None, "at_time": "7am"}, "at_time", None),
    ({"delay_seconds": None, "at_time": "2025-12-05"}, "at_time", None),
    ({"delay_seconds": None, "at_time": 700}, "at_time", None),
    ({"delay_seconds": None, "at_time": "2025-11-30T09:00:00"}, "at_time", "in the past"),
    ({"delay_seconds": None, "at_time": "2027-06-01T09:00:00"}, "at_time", "366 days"),
    ({"delay_seconds": None, "at_time": "07:00", "recurring": "hourly"}, "recurring", None),
    ({"recurring": "daily"}, "recurring", "at_time"),
    ({"delay_seconds": "10"}, "delay_seconds", None),
    ({"delay_seconds": 0}, "delay_seconds", None),
    ({"delay_seconds": -5}, "delay_seconds", None),
    ({"delay_seconds": True}, "delay_seconds", None),
    ({"delay_seconds": 1.5}, "delay_seconds", None),
    ({"delay_seconds": 367 * 86400}, "delay_seconds", None),
    ({"message": None, "tool": "INVALID"}, "tool",
     "Tool 'INVALID' not found. Use GET /tools to list available tools."),
    ({"colour": "blue"}, "colour", None),
    ({"tool_params": {"city": "x"}}, "tool_params", None),
    ({"message": None, "tool": "WEATHER", "tool_params": [1]}, "tool_params", None),
    ({"extension": None}, "extension", "extension is required"),
    ({"extension": ""}, "extension", None),
    ({"extension": 1001}, "extension", None),
    ({"message": ""}, "message", None),
    ({"message": 5}, "message", None),
    ({"prefix": "x" * 1001}, "prefix", None),
    ({"suffix": 3}, "suffix", None),
    ({"callback_url": "ftp://example.com/x"}, "callback_url", None),
])
def test_bad_requests_name_the_field(changes: dict[str, Any], field: str,
                                     detail: str | None) -> None:
    data = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    with pytest.raises(ScheduleRequestError) as caught:
        parse_request(data, at("2025-12-01T00:00:00-08:00"), TOOLS)
    error = caught.value
    assert error.field == field
    assert field in str(error)
    assert str(error) == error.detail
    if detail is not None:
        if detail.startswith(("give", "Tool", "extension is")):
            assert str(error) == detail
        else:
            assert detail in str(error)
    assert isinstance(error, ValueError)


def test_prefix_of_1000_characters_is_fine() -> None:
    record = parse_request({**BASE, "prefix": "x" * 1000},
                           at("2025-12-01T00:00:00-08:00"), TOOLS)
    assert record.prefix == "x" * 1000


# -- DST: next_occurrence ------------------------------------------------------------------

def runs(wall: time, after: datetime, recurring: str | None, count: int) -> list[datetime]:
    result = []
    for _ in range(count):
        after = next_occurrence(wall, LA, after, recurring)
        result.append(after)
    return result


def local(instants: list[datetime]) -> list[str]:
    return [moment.astimezone(LA).isoformat() for moment in instants]


def test_daily_7am_stays_at_7am_across_spring_forward() -> None:
    chain = runs(time(7), at("2026-03-06T12:00:00-08:00"), "daily", 4)
    assert local(chain) == [
        "2026-03-07T07:00:00-08:00",
        "2026-03-08T07:00:00-07:00",
        "2026-03-09T07:00:00-07:00",
        "2026-03-10T07:00:00-07:00",
    ]
    assert [m.hour for m in chain] == [15, 14, 14, 14]  # UTC
    assert all(m.tzinfo == UTC for m in chain)
    assert chain[1] - chain[0] == timedelta(hours=23)


def test_daily_7am_stays_at_7am_across_fall_back() -> None:
    chain = runs(time(7), at("2026-10-30T12:00:00-07:00"), "daily", 3)
    assert local(chain) == [
        "2026-10-31T07:00:00-07:00",
        "2026-11-01T07:00:00-08:00",
        "2026-11-02T07:00:00-08:00",
    ]
    assert chain[1] - chain[0] == timedelta(hours=25)


def test_weekdays_skip_the_weekend_and_weekends_skip_the_week() -> None:
    start = at("2026-03-04T12:00:00-08:00")  # a Wednesday
    weekdays = runs(time(7), start, "weekdays", 6)
    assert [m.astimezone(LA).date() for m in weekdays] == [
        date(2026, 3, 5), date(2026, 3, 6), date(2026, 3, 9), date(2026, 3, 10),
        date(2026, 3, 11), date(2026, 3, 12)]
    assert all(m.astimezone(LA).weekday() < 5 for m in weekdays)
    assert local(weekdays)[2] == "2026-03-09T07:00:00-07:00"  # after the change

    weekends = runs(time(7), start, "weekends", 4)
    assert [m.astimezone(LA).date() for m in weekends] == [
        date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 14), date(2026, 3, 15)]
    assert local(weekends)[:2] == ["2026-03-07T07:00:00-08:00", "2026-03-08T07:00:00-07:00"]


def test_nonexistent_time_runs_when_the_clocks_jump() -> None:
    chain = runs(time(2, 30), at("2026-03-07T12:00:00-08:00"), "daily", 3)
    assert local(chain) == [
        "2026-03-08T03:00:00-07:00",  # 02:30 does not exist that day
        "2026-03-09T02:30:00-07:00",
        "2026-03-10T02:30:00-07:00",
    ]


def test_ambiguous_time_runs_once_at_its_first_occurrence() -> None:
    chain = runs(time(1, 30), at("2026-10-31T12:00:00-07:00"), "daily", 2)
    assert local(chain) == ["2026-11-01T01:30:00-07:00", "2026-11-02T01:30:00-08:00"]


def test_naive_iso_in_the_gap_and_the_fold() -> None:
    now = at("2026-03-01T00:00:00-08:00")
    gap = parse_request({"extension": "1", "message": "m",
                         "at_time": "2026-03-08T02:30:00"}, now, TOOLS)
    assert created_response(gap, now)["scheduled_for"] == "2026-03-08T03:00:00-07:00"
    fold = parse_request({"extension": "1", "message": "m",
                          "at_time": "2026-11-01T01:30:00"}, now, TOOLS)
    assert created_response(fold, now)["scheduled_for"] == "2026-11-01T01:30:00-07:00"


def test_next_occurrence_needs_an_aware_after() -> None:
    with pytest.raises(ValueError):
        next_occurrence(time(7), LA, datetime(2026, 1, 1), "daily")


# -- the Scheduler -----------------------------------------------------------------------------

class FakeClock:
    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._now += timedelta(**delta)

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment.astimezone(UTC)


class Phone:
    """The daemon's side: fire() records the record and returns a call id, or raises."""

    def __init__(self) -> None:
        self.fired: list[ScheduleRecord] = []
        self.outcomes: list[tuple[ScheduleRecord, str]] = []
        self.failing: set[str] = set()  # extensions whose fire() raises
        self._cond = threading.Condition()

    def fire(self, record: ScheduleRecord) -> str:
        with self._cond:
            self.fired.append(record)
            if record.extension in self.failing:
                raise RuntimeError("the call queue is full")
            return f"out-{len(self.fired)}"

    def on_fired(self, record: ScheduleRecord, outcome: str) -> None:
        with self._cond:
            self.outcomes.append((record, outcome))
            self._cond.notify_all()

    def wait_outcomes(self, count: int) -> list[tuple[ScheduleRecord, str]]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.outcomes) >= count, WAIT), \
                f"only {len(self.outcomes)} of {count} outcomes"
            return list(self.outcomes)

    def fired_ids(self) -> list[str]:
        with self._cond:
            return [r.schedule_id for r in self.fired]


START = at("2025-12-01T06:00:00-08:00")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def phone() -> Phone:
    return Phone()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sipassist.json"


@pytest.fixture
def make(db: Path, clock: FakeClock, phone: Phone) -> Iterator[Any]:
    opened: list[tuple[Store, Scheduler]] = []

    def factory(start: bool = True, **kwargs: Any) -> Scheduler:
        store = Store(db)
        scheduler = Scheduler(store, phone.fire, clock, on_fired=phone.on_fired, **kwargs)
        opened.append((store, scheduler))
        if start:
            scheduler.start()
        return scheduler

    yield factory
    for store, scheduler in opened:
        scheduler.stop()
        store.close()


def request(clock: FakeClock, **data: Any) -> ScheduleRecord:
    return parse_request({"extension": "1001", "message": "Hello", **data}, clock(), TOOLS)


def stored(db: Path, schedule_id: str) -> dict[str, Any] | None:
    with Store(db) as store:
        return store.get(TABLE, "schedule_id", schedule_id)


def test_one_shot_fires_once_and_completes(make: Any, clock: FakeClock, phone: Phone,
                                           db: Path) -> None:
    scheduler = make()
    record = scheduler.add(request(clock, delay_seconds=600))
    assert stored(db, record.schedule_id)["status"] == PENDING
    assert scheduler.get(record.schedule_id) == record

    clock.advance(seconds=599)
    scheduler.wake()
    clock.advance(seconds=1)
    scheduler.wake()
    (done, outcome), = phone.wait_outcomes(1)
    assert outcome == COMPLETED
    assert phone.fired == [record]
    assert done.status == COMPLETED and done.runs == 1 and done.last_call_id == "out-1"
    assert done.last_run_at == clock()
    assert scheduler.get(record.schedule_id) == done
    assert stored(db, record.schedule_id)["status"] == COMPLETED
    assert list_item(done, clock())["remaining_seconds"] == 0

    clock.advance(days=2)
    assert scheduler.run_due() == 0
    assert len(phone.fired) == 1
    assert scheduler.cancel(record.schedule_id) is False


def test_cancel_before_due_never_fires(make: Any, clock: FakeClock, phone: Phone,
                                       db: Path) -> None:
    scheduler = make()
    doomed = scheduler.add(request(clock, delay_seconds=60))
    sentinel = scheduler.add(request(clock, delay_seconds=120, extension="1002"))
    assert scheduler.cancel(doomed.schedule_id) is True
    assert scheduler.get(doomed.schedule_id).status == CANCELLED
    assert stored(db, doomed.schedule_id)["status"] == CANCELLED
    assert scheduler.cancel(doomed.schedule_id) is False
    assert scheduler.cancel("nosuchid") is False

    clock.advance(seconds=200)
    scheduler.wake()
    # Due runs fire earliest first, so once the later one has fired the cancelled one
    # would have too.
    phone.wait_outcomes(1)
    assert phone.fired_ids() == [sentinel.schedule_id]


def test_recurring_fires_and_moves_to_the_next_day(make: Any, clock: FakeClock,
                                                   phone: Phone, db: Path) -> None:
    scheduler = make()
    record = scheduler.add(request(clock, at_time="07:00", recurring="daily", message=None,
                                   tool="WEATHER"))
    assert record.next_run == at("2025-12-01T07:00:00-08:00")

    clock.set(at("2025-12-01T07:00:00-08:00"))
    scheduler.wake()
    (first, outcome), = phone.wait_outcomes(1)
    assert outcome == COMPLETED
    assert first.status == PENDING and first.runs == 1 and first.last_call_id == "out-1"
    assert first.next_run == at("2025-12-02T07:00:00-08:00")
    assert ScheduleRecord.from_document(stored(db, record.schedule_id)) == first

    clock.set(at("2025-12-02T07:00:03-08:00"))
    scheduler.wake()
    second = phone.wait_outcomes(2)[1][0]
    assert second.runs == 2 and second.last_call_id == "out-2"
    assert second.next_run == at("2025-12-03T07:00:00-08:00")
    assert [r.run_call_id for r in phone.fired] == [
        f"sched-{record.schedule_id}-1", f"sched-{record.schedule_id}-2"]


def test_schedules_survive_a_restart(make: Any, clock: FakeClock, phone: Phone) -> None:
    first = make()
    one_shot = first.add(request(clock, delay_seconds=3600))
    daily = first.add(request(clock, at_time="08:00", recurring="weekdays"))
    first.stop()

    second = make()
    assert second.get(one_shot.schedule_id) == one_shot
    assert [r.schedule_id for r in second.list()] == [one_shot.schedule_id, daily.schedule_id]
    clock.advance(hours=1)
    second.wake()
    phone.wait_outcomes(1)
    clock.advance(hours=1)
    second.wake()
    phone.wait_outcomes(2)
    assert phone.fired_ids() == [one_shot.schedule_id, daily.schedule_id]
    assert second.get(one_shot.schedule_id).status == COMPLETED
    assert second.get(daily.schedule_id).next_run == at("2025-12-02T08:00:00-08:00")


def test_missed_while_down_beyond_grace(make: Any, clock: FakeClock, phone: Phone,
                                        db: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = make(start=False)
    one_shot = first.add(request(clock, delay_seconds=60))
    daily = first.add(request(clock, at_time="06:30", recurring="daily"))

    clock.set(at("2025-12-01T07:00:00-08:00"))  # both more than 300 s late
    with caplog.at_level(logging.WARNING, logger="sipassist.scheduling"):
        second = make()  # start() sweeps before returning
    assert phone.fired == []
    missed = second.get(one_shot.schedule_id)
    assert missed.status == MISSED and missed.runs == 0
    assert stored(db, one_shot.schedule_id)["status"] == MISSED
    moved = second.get(daily.schedule_id)
    assert moved.status == PENDING and moved.runs == 0
    assert moved.next_run == at("2025-12-02T06:30:00-08:00")
    assert sorted(outcome for _, outcome in phone.outcomes) == [MISSED, MISSED]
    warnings = [r for r in caplog.records if "missed" in r.getMessage()]
    assert {r.SCHEDULE_ID for r in warnings} == {one_shot.schedule_id, daily.schedule_id}
    assert {r.EXTENSION for r in warnings} == {"1001"}


def test_missed_within_grace_fires_at_start(make: Any, clock: FakeClock, phone: Phone) -> None:
    first = make(start=False)
    record = first.add(request(clock, delay_seconds=60))
    clock.advance(seconds=60 + 299)
    second = make()
    assert phone.fired_ids() == [record.schedule_id]
    assert second.get(record.schedule_id).status == COMPLETED


def test_fire_raising_fails_and_the_scheduler_keeps_running(
        make: Any, clock: FakeClock, phone: Phone, db: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    phone.failing.add("666")
    scheduler = make()
    bad = scheduler.add(request(clock, delay_seconds=10, extension="666"))
    good = scheduler.add(request(clock, delay_seconds=20))
    with caplog.at_level(logging.ERROR, logger="sipassist.scheduling"):
        clock.advance(seconds=15)
        scheduler.wake()
        (failed, outcome), = phone.wait_outcomes(1)
    assert outcome == FAILED
    assert failed.status == FAILED and failed.runs == 1 and failed.last_call_id is None
    assert stored(db, bad.schedule_id)["status"] == FAILED
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "the call queue is full" in errors[0].getMessage()
    assert errors[0].SCHEDULE_ID == bad.schedule_id

    clock.advance(seconds=10)
    scheduler.wake()
    assert phone.wait_outcomes(2)[1][1] == COMPLETED
    assert scheduler.get(good.schedule_id).status == COMPLETED


def test_a_failing_recurring_run_stays_pending(make: Any, clock: FakeClock,
                                               phone: Phone) -> None:
    phone.failing.add("666")
    scheduler = make()
    record = scheduler.add(request(clock, extension="666", at_time="06:10",
                                   recurring="daily"))
    clock.advance(minutes=10)
    scheduler.wake()
    (after, outcome), = phone.wait_outcomes(1)
    assert outcome == FAILED and after.status == PENDING and after.runs == 1
    assert after.next_run == record.next_run + timedelta(days=1)


def test_thread_notices_due_runs_without_wake(make: Any, clock: FakeClock,
                                              phone: Phone) -> None:
    scheduler = make(max_wait=0.05)
    scheduler.add(request(clock, delay_seconds=5))
    clock.advance(seconds=5)  # no wake(): the bounded wait catches it
    assert phone.wait_outcomes(1)[0][1] == COMPLETED


def test_list_puts_pending_first_by_next_run(make: Any, clock: FakeClock,
                                             phone: Phone) -> None:
    scheduler = make(start=False)
    late = scheduler.add(request(clock, delay_seconds=900))
    soon = scheduler.add(request(clock, delay_seconds=100))
    gone = scheduler.add(request(clock, delay_seconds=50))
    scheduler.cancel(gone.schedule_id)
    assert [r.schedule_id for r in scheduler.list()] == [
        soon.schedule_id, late.schedule_id, gone.schedule_id]


def test_add_keeps_ids_unique_and_limits_pending(make: Any, clock: FakeClock) -> None:
    scheduler = make(start=False, max_pending=2)
    first = scheduler.add(request(clock, delay_seconds=100))
    again = scheduler.add(first)
    assert again.schedule_id != first.schedule_id
    assert re.fullmatch(r"[0-9a-f]{8}", again.schedule_id)
    with pytest.raises(SchedulerFull):
        scheduler.add(request(clock, delay_seconds=100))
    scheduler.cancel(first.schedule_id)
    scheduler.add(request(clock, delay_seconds=100))


def test_unreadable_documents_are_skipped(db: Path, make: Any, clock: FakeClock,
                                          caplog: pytest.LogCaptureFixture) -> None:
    with Store(db) as store:
        store.insert(TABLE, {"schedule_id": "deadbeef", "extension": "1"})
        store.insert(TABLE, {**request(clock, delay_seconds=5).to_document(),
                             "schedule_id": "badzone1", "timezone": "Mars/Base"})
    good = request(clock, delay_seconds=5)
    with Store(db) as store:
        store.insert(TABLE, good.to_document())
    with caplog.at_level(logging.ERROR, logger="sipassist.scheduling"):
        scheduler = make(start=False)
    assert [r.schedule_id for r in scheduler.list()] == [good.schedule_id]
    assert len([r for r in caplog.records if "unreadable" in r.getMessage()]) == 2


def test_old_finished_records_are_pruned(make: Any, clock: FakeClock, phone: Phone,
                                         db: Path) -> None:
    scheduler = make(retention=timedelta(days=1))
    record = scheduler.add(request(clock, delay_seconds=5))
    keep = scheduler.add(request(clock, delay_seconds=3 * 86400))
    clock.advance(seconds=5)
    scheduler.wake()
    phone.wait_outcomes(1)
    clock.advance(days=3)
    scheduler.wake()
    phone.wait_outcomes(2)  # `keep` fires; the sweep then prunes the old one
    assert scheduler.get(record.schedule_id) is None
    assert stored(db, record.schedule_id) is None
    assert scheduler.get(keep.schedule_id).status == COMPLETED


def test_on_fired_errors_do_not_stop_the_scheduler(db: Path, clock: FakeClock,
                                                   phone: Phone) -> None:
    def broken(record: ScheduleRecord, outcome: str) -> None:
        raise RuntimeError("webhook store is broken")

    with Store(db) as store:
        scheduler = Scheduler(store, phone.fire, clock, on_fired=broken)
        scheduler.start()
        try:
            record = scheduler.add(request(clock, delay_seconds=5))
            clock.advance(seconds=5)
            assert scheduler.run_due() == 1
            assert scheduler.get(record.schedule_id).status == COMPLETED
        finally:
            scheduler.stop()


def test_a_storage_error_while_placing_leaves_the_run_pending(make: Any, clock: FakeClock,
                                                              phone: Phone) -> None:
    """A full disk refuses the call: the run is not failed but tried again, under the same
    call_id, and the thread goes on."""
    from sipassist.faults import StorageError

    refusals = [StorageError("state directory /x is full. Fix: free space")]
    fire = phone.fire

    def fire_when_writable(record: ScheduleRecord) -> str:
        if refusals:
            raise refusals.pop()
        return fire(record)

    phone.fire = fire_when_writable  # type: ignore[method-assign]
    scheduler = make(start=False, max_wait=0.05)
    record = scheduler.add(request(clock, delay_seconds=5))
    clock.advance(seconds=5)
    with pytest.raises(StorageError):
        scheduler.run_due()
    assert scheduler.get(record.schedule_id).status == PENDING
    assert scheduler.get(record.schedule_id).runs == 0
    scheduler.start()  # catches up on the run that is still due
    (done, outcome), = phone.wait_outcomes(1)
    assert outcome == COMPLETED and done.runs == 1
    assert [r.schedule_id for r in phone.fired] == [record.schedule_id]
