"""Running scheduled calls on time, from one background thread, surviving restarts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from ..faults import StorageError
from ..store import Store
from .record import (
    CANCELLED, COMPLETED, FAILED, FINAL_STATUSES, MISSED, ScheduleRecord,
    new_schedule_id,
)
from .timing import next_occurrence, to_local_iso

log = logging.getLogger(__name__)

TABLE = "schedules"
KEY = "schedule_id"
STORAGE_RETRY_SECONDS = 5.0


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _fields(record: ScheduleRecord) -> dict[str, str]:
    """Structured log fields (journald later)."""
    return {"SCHEDULE_ID": record.schedule_id, "EXTENSION": record.extension}


class SchedulerFull(RuntimeError):
    """Too many pending schedules; the message is an API `detail`."""


class Scheduler:
    """Keeps schedules in the store's "schedules" table and fires them when due.

    `fire(record)` places the call (queues it) and returns its call_id, or raises. It runs on
    the scheduler's thread, so it must not block for long. `on_fired(record, outcome)` is told
    about every run with the updated record and "completed" (the call was placed), "failed"
    (fire raised) or "missed" (more than `grace_seconds` late); it suits sending the webhook.

    A run found more than `grace_seconds` late, at start() or later (the daemon was down, the
    host slept, or the clock jumped forward, as on a Raspberry Pi without a real-time clock
    when NTP first syncs), is not called: a one-shot becomes "missed", a recurring one moves
    to its next run and stays pending. Runs within the grace fire at once.

    Every change is written to the store before get() or list() can see it. A run is recorded
    after fire() returns, so a kill in between fires it again after restart: fire should
    queue the call under `record.run_call_id` so that the repeat is refused as a duplicate.

    Finished records (completed, cancelled, missed, failed) are removed `retention` after
    they finished.
    """

    def __init__(
        self,
        store: Store,
        fire: Callable[[ScheduleRecord], str | None],
        clock: Callable[[], datetime] = _utc_now,
        grace_seconds: float = 300,
        on_fired: Callable[[ScheduleRecord, str], None] | None = None,
        *,
        max_wait: float = 30.0,
        max_pending: int = 1000,
        retention: timedelta = timedelta(days=30),
    ) -> None:
        self._store = store
        self._fire = fire
        self._clock = clock
        self._grace = timedelta(seconds=grace_seconds)
        self._on_fired = on_fired
        self._max_wait = max_wait
        self._max_pending = max_pending
        self._retention = retention
        self._cond = threading.Condition(threading.RLock())
        self._records: dict[str, ScheduleRecord] = {}
        self._firing: set[str] = set()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._load()

    # -- the API's side ---------------------------------------------------------------------

    def add(self, record: ScheduleRecord) -> ScheduleRecord:
        """Store a new pending record and return it as stored (with a fresh schedule_id if
        its id was taken). Raises SchedulerFull at `max_pending` pending schedules."""
        if not record.pending:
            raise ValueError("only a pending schedule can be added")
        with self._cond:
            pending = sum(1 for r in self._records.values() if r.pending)
            if pending >= self._max_pending:
                raise SchedulerFull(f"{pending} calls are already scheduled, the most this "
                                    "assistant keeps; cancel some first")
            while record.schedule_id in self._records:
                record = record.evolve(schedule_id=new_schedule_id())
            self._save(record)
            self._cond.notify_all()
        log.info("scheduled a call to %s for %s%s", record.extension,
                 to_local_iso(record.next_run, record.zone),
                 f", {record.recurring}" if record.recurring else "", extra=_fields(record))
        return record

    def get(self, schedule_id: str) -> ScheduleRecord | None:
        with self._cond:
            return self._records.get(schedule_id)

    def list(self) -> list[ScheduleRecord]:
        """Pending schedules first, soonest first; then finished ones, latest run first."""
        with self._cond:
            records = list(self._records.values())
        pending = sorted((r for r in records if r.pending), key=lambda r: r.next_run)
        finished = sorted((r for r in records if not r.pending),
                          key=lambda r: r.next_run, reverse=True)
        return pending + finished

    def cancel(self, schedule_id: str) -> bool:
        """Cancel a pending schedule; False if there is none by that id or it is not pending.

        A run already being placed when this is called still goes ahead."""
        with self._cond:
            record = self._records.get(schedule_id)
            if record is None or not record.pending:
                return False
            record = record.evolve(status=CANCELLED, finished_at=self._clock())
            self._save(record)
            self._cond.notify_all()
        log.info("cancelled the scheduled call to %s", record.extension, extra=_fields(record))
        return True

    # -- running ----------------------------------------------------------------------------

    def start(self) -> None:
        """Catch up on runs due while the daemon was down, then start the thread.

        Runs within `grace_seconds` of their time are fired before this returns; older ones
        are recorded as missed."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("Scheduler is already running")
        with self._cond:
            self._stopping = False
        try:
            self.run_due()
        except Exception:
            # A storage error, say: the thread tries again shortly; start must not fail.
            log.exception("catching up on due schedules failed; retrying")
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        """Stop the thread after the run in progress, if any; schedules stay in the store."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("scheduler thread still busy after %.1fs", timeout)
            self._thread = None

    def wake(self) -> None:
        """Make the thread look at the clock now (after a clock change, or in tests)."""
        with self._cond:
            self._cond.notify_all()

    def run_due(self) -> int:
        """Fire (or record as missed) every pending run due by now; the number handled.

        The thread calls this; calling it directly is safe too (a run is never taken twice).
        """
        now = self._clock()
        with self._cond:
            due = sorted((r for r in self._records.values()
                          if r.pending and r.next_run <= now and r.schedule_id not in self._firing),
                         key=lambda r: r.next_run)
            self._firing.update(r.schedule_id for r in due)
        try:
            for record in due:
                self._run_one(record, now)
        finally:
            with self._cond:
                self._firing.difference_update(r.schedule_id for r in due)
        self._prune(now)
        return len(due)

    def _run(self) -> None:
        while True:
            try:
                with self._cond:
                    if self._stopping:
                        return
                    now = self._clock()
                    earliest = min((r.next_run for r in self._records.values()
                                    if r.pending and r.schedule_id not in self._firing),
                                   default=None)
                    if earliest is None or earliest > now:
                        wait = self._max_wait
                        if earliest is not None:
                            wait = min(wait, (earliest - now).total_seconds())
                        # At most max_wait, so a jump of the wall clock is noticed.
                        self._cond.wait(wait)
                        continue
                self.run_due()
            except Exception as exc:
                # A store error (disk full, say) must not end scheduling for good.
                retry = min(self._max_wait, STORAGE_RETRY_SECONDS)
                if isinstance(exc, StorageError):
                    log.error("scheduler waits for the state to be writable: %s", exc)
                else:
                    log.exception("scheduler loop failed; retrying in %.0fs", retry)
                with self._cond:
                    if not self._stopping:
                        self._cond.wait(retry)

    def _run_one(self, record: ScheduleRecord, now: datetime) -> None:
        with self._cond:
            current = self._records.get(record.schedule_id)
            if current is None or not current.pending or current.next_run != record.next_run:
                return  # cancelled or already handled since it was picked
        late = now - current.next_run
        if late > self._grace:
            self._miss(current, now, late)
            return

        call_id: str | None = None
        outcome = COMPLETED
        try:
            call_id = self._fire(current)
        except StorageError:
            raise  # not the run's fault: it stays pending and is tried again shortly
        except Exception as exc:
            outcome = FAILED
            log.error("scheduled call to %s failed: %s", current.extension, exc,
                      exc_info=True, extra=_fields(current))
        ran_at = self._clock()
        with self._cond:
            latest = self._records.get(current.schedule_id, current)
            changes: dict = {"runs": latest.runs + 1, "last_run_at": ran_at,
                             "last_call_id": call_id}
            if latest.pending:  # not cancelled while fire() ran
                if latest.recurring:
                    changes["next_run"] = self._following(latest, max(ran_at, latest.next_run))
                else:
                    changes.update(status=outcome, finished_at=ran_at)
            updated = latest.evolve(**changes)
            self._save(updated)
        if outcome == COMPLETED:
            log.info("scheduled call to %s placed as %s%s", updated.extension, call_id,
                     self._next_note(updated), extra=_fields(updated))
        self._notify(updated, outcome)

    def _miss(self, record: ScheduleRecord, now: datetime, late: timedelta) -> None:
        with self._cond:
            if record.recurring:
                updated = record.evolve(next_run=self._following(record, now))
            else:
                updated = record.evolve(status=MISSED, finished_at=now)
            self._save(updated)
        log.warning("missed the scheduled call to %s due at %s (%d s late, more than the "
                    "%d s grace)%s", record.extension,
                    to_local_iso(record.next_run, record.zone), late.total_seconds(),
                    self._grace.total_seconds(), self._next_note(updated),
                    extra=_fields(record))
        self._notify(updated, MISSED)

    @staticmethod
    def _following(record: ScheduleRecord, after: datetime) -> datetime:
        wall = record.wall_time
        assert wall is not None  # a recurring record always has one
        return next_occurrence(wall, record.zone, after, record.recurring)

    @staticmethod
    def _next_note(record: ScheduleRecord) -> str:
        if not record.pending:
            return ""
        return f"; next run {to_local_iso(record.next_run, record.zone)}"

    def _notify(self, record: ScheduleRecord, outcome: str) -> None:
        if self._on_fired is None:
            return
        try:
            self._on_fired(record, outcome)
        except Exception:
            log.exception("on_fired failed for a scheduled call", extra=_fields(record))

    # -- storage ----------------------------------------------------------------------------

    def _save(self, record: ScheduleRecord) -> None:
        """Persist, then publish. Call with the lock held."""
        self._store.upsert(TABLE, KEY, record.to_document())
        self._records[record.schedule_id] = record

    def _load(self) -> None:
        records = {}
        for doc in self._store.all(TABLE):
            try:
                record = ScheduleRecord.from_document(doc)
            except (KeyError, TypeError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
                log.error("ignoring unreadable schedule %r in %s: %s", doc.get(KEY),
                          self._store.path, exc)
                continue
            records[record.schedule_id] = record
        with self._cond:
            self._records = records

    def _prune(self, now: datetime) -> None:
        with self._cond:
            old = [r for r in self._records.values()
                   if r.status in FINAL_STATUSES
                   and (r.finished_at or r.last_run_at or r.next_run) < now - self._retention]
            for record in old:
                self._store.remove(TABLE, KEY, record.schedule_id)
                del self._records[record.schedule_id]
        for record in old:
            log.debug("removed finished schedule", extra=_fields(record))
