"""The call queue: FIFO, at most `max_concurrent` calls at once, persisted so a restart keeps it.

Queued and active calls are in the small append-only journal `LiveCalls`; a call that ends
moves to the append-only `CallHistory`, so the cost of a change does not grow with the number
of past calls (and is one fsync).
A queued call is on disk before `submit` returns (else it raises StorageError). A change during
or at the end of a call that cannot be written (disk full, read-only) is kept in memory and
written again by the storage retry loop until it succeeds; the call itself goes on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..config import QueueSettings
from ..faults import StorageError
from ..store import Store
from .history import CallHistory
from .live import LiveCalls
from .model import FAILED, IN_PROGRESS, QUEUED, RINGING, CallRecord, iso, utc_now

log = logging.getLogger(__name__)

TABLE = "calls"  # in the tinydb calls.json of earlier versions
KEY = "call_id"
COMPACT_SLACK = 64  # journal lines beyond the live calls before it is compacted


class QueueFull(RuntimeError):
    pass


class DuplicateCallId(ValueError):
    pass


class Runner(Protocol):
    def run(self, record: CallRecord, update: Callable[..., CallRecord]) -> CallRecord: ...


class CallQueue:
    def __init__(
        self,
        live: LiveCalls,
        settings: QueueSettings,
        runner: Runner,
        can_dial: Callable[[float], bool],
        on_finished: Callable[[CallRecord], None],
        history: CallHistory,
        legacy_db: Path | None = None,
    ) -> None:
        self.live = live
        self.history = history
        self.legacy_db = legacy_db  # calls.json of earlier versions, moved over at start
        self.settings = settings
        self.runner = runner
        self.can_dial = can_dial  # waits up to the given seconds for telephony to be usable
        self.on_finished = on_finished
        self.on_refused: Callable[[CallRecord], None] | None = None  # a caller told busy
        self._cond = threading.Condition()
        self._pending: list[str] = []
        self._active: set[str] = set()
        # Calls not (yet) in the history: queued, active, and ended ones not written yet.
        self._records: dict[str, CallRecord] = {}
        self._unsaved: set[str] = set()  # their latest change is not on disk yet
        self._seq = 0
        self._stopping = False
        self._workers: list[threading.Thread] = []
        self._ids = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load stored calls; calls cut off by a stop or crash are failed, queued ones resume.

        Ended calls still in the journal (a crash between the two writes, or the calls.json
        of an earlier version) move to the history."""
        self.history.load()
        docs = self.live.load() + self._legacy_docs()
        ended, ended_docs, interrupted = [], [], []
        for doc in docs:
            record = CallRecord.from_document(doc)
            if self.history.contains(record.call_id):
                continue  # in the history; the compaction below drops it from the journal
            if record.final:
                ended.append(record)
                ended_docs.append(doc)
            elif record.status in (RINGING, IN_PROGRESS):
                interrupted.append(record.evolve(
                    status=FAILED, completed_at=iso(utc_now()),
                    error="the daemon stopped while the call was in progress"))
            else:
                self._records[record.call_id] = record
        self._seq = max([self.history.max_seq, *(r.seq for r in ended + interrupted),
                         *(r.seq for r in self._records.values())])
        moving = ended + interrupted
        try:
            self.history.append(ended_docs + [r.to_document() for r in interrupted])
        except StorageError:
            # Kept in memory and written by the retry loop once the disk allows.
            for record in moving:
                self._records[record.call_id] = record
                self._unsaved.add(record.call_id)
        self._compact()
        self._retire_legacy()
        if ended:
            log.info("moved %d ended call(s) to %s", len(ended), self.history.path)
        self._pending = [
            r.call_id for r in sorted(self._records.values(), key=lambda r: r.seq)
            if r.status == QUEUED
        ]
        if self._pending:
            log.info("resuming %d queued call(s)", len(self._pending))
        for record in interrupted:
            self._finished(record)
        self._stopping = False
        self._workers = [
            threading.Thread(target=self._work, name=f"call-worker-{n}", daemon=True)
            for n in range(self.settings.max_concurrent)
        ]
        for worker in self._workers:
            worker.start()

    def _legacy_docs(self) -> list[dict]:
        if self.legacy_db is None or not self.legacy_db.exists():
            return []
        store = Store(self.legacy_db)
        try:
            return store.all(TABLE)
        finally:
            store.close()

    def _retire_legacy(self) -> None:
        """calls.json is in the journal and history now: keep it aside, never read it again."""
        if self.legacy_db is None or not self.legacy_db.exists():
            return
        try:
            os.replace(self.legacy_db, self.legacy_db.with_name(self.legacy_db.name + ".migrated"))
            self.legacy_db.with_name(self.legacy_db.name + ".good").unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot rename %s after moving its calls: %s", self.legacy_db, exc)
            return
        log.info("moved the calls of %s to %s and %s", self.legacy_db, self.live.path,
                 self.history.path)

    def _compact(self) -> None:
        """Rewrite the journal with the calls not (yet) in the history; lock held or at start."""
        try:
            self.live.compact([r.to_document() for r in self._records.values()])
        except StorageError:
            return  # the journal stays as it was; fine to read, compacted another time
        for call_id in list(self._unsaved):
            if not self._records[call_id].final:
                self._unsaved.discard(call_id)  # its latest state was just written

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def retry_unsaved(self) -> None:
        """Write the changes a storage error held back (the storage retry loop calls this)."""
        with self._cond:
            for call_id in list(self._unsaved):
                self._save(self._records[call_id])
        self.history.maybe_prune()

    # -- API -------------------------------------------------------------------------------

    def _known(self, call_id: str) -> bool:
        return call_id in self._records or self.history.contains(call_id)

    def _new_call_id(self) -> str:
        """out-<unix time>-<n>, as the contract shows; called with the lock held."""
        while True:
            self._ids += 1
            call_id = f"out-{int(time.time())}-{self._ids}"
            if not self._known(call_id):
                return call_id

    def submit(self, record: CallRecord) -> tuple[CallRecord, int | None]:
        """Queue a call; returns it and its queue position (None when it starts at once).

        A record without a call_id gets one here, under the same lock as the duplicate check.
        The call is on disk when this returns; StorageError if it could not be written.
        """
        with self._cond:
            if not record.call_id:
                record = record.evolve(call_id=self._new_call_id())
            if self._known(record.call_id):
                raise DuplicateCallId(record.call_id)
            if len(self._pending) >= self.settings.max_pending:
                raise QueueFull(f"the queue already holds {len(self._pending)} calls")
            record = record.evolve(seq=self._seq + 1, status=QUEUED, queued_at=iso(utc_now()))
            self.live.write(record.to_document())  # raises StorageError
            self._seq = record.seq
            self._records[record.call_id] = record
            waiting_before = len(self._pending)
            self._pending.append(record.call_id)
            free_slots = self.settings.max_concurrent - len(self._active)
            position = None if waiting_before < free_slots else waiting_before - free_slots + 1
            self._cond.notify()
        log.info("call %s to %s queued", record.call_id, record.extension,
                 extra={"CALL_ID": record.call_id, "EXTENSION": record.extension})
        return record, position

    def recent(self, limit: int, direction: str | None = None) -> list[CallRecord]:
        """The latest calls first, outbound and inbound alike."""
        with self._cond:
            records = {r.call_id: r for r in self._records.values()
                       if direction is None or r.direction == direction}
        for doc in self.history.recent(limit, direction):
            records.setdefault(doc[KEY], CallRecord.from_document(doc))
        return sorted(records.values(), key=lambda r: r.seq, reverse=True)[:limit]

    def get(self, call_id: str) -> CallRecord | None:
        with self._cond:
            record = self._records.get(call_id)
        if record is not None:
            return record
        doc = self.history.get(call_id)
        return CallRecord.from_document(doc) if doc is not None else None

    # -- inbound calls share the slots and the records ------------------------------------------

    def begin_inbound(self, record: CallRecord) -> bool:
        """Take a slot for an answered-to-be call; False (busy) when all are in use."""
        with self._cond:
            if len(self._active) >= self.settings.max_concurrent:
                return False
            self._seq += 1
            record = record.evolve(seq=self._seq)
            self._records[record.call_id] = record
            self._active.add(record.call_id)
            self._save(record)
            return True

    def update(self, call_id: str, **changes: object) -> CallRecord:
        return self._update(call_id, changes)

    def end_inbound(self, call_id: str, **changes: object) -> CallRecord:
        try:
            record = self._update(call_id, changes)
        finally:
            with self._cond:
                self._active.discard(call_id)
                self._cond.notify_all()
        self.history.maybe_prune()
        return record

    def record_refused(self, record: CallRecord) -> None:
        """Keep a call turned away as busy, so it is listed like the rest."""
        with self._cond:
            self._seq += 1
            record = record.evolve(seq=self._seq)
            self._records[record.call_id] = record
            self._save(record)
        if self.on_refused is not None:
            self.on_refused(record)

    def wait_idle(self, timeout: float) -> bool:
        """True once no call is active (for an orderly shutdown, and tests)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._active, timeout)

    def wait_ended(self, call_id: str, timeout: float) -> CallRecord | None:
        """The call's record once it has ended (its worker notifies), or None after `timeout`."""
        def ended() -> bool:
            record = self._records.get(call_id)
            return record is None or record.final
        with self._cond:
            if not self._cond.wait_for(ended, timeout):
                return None
        return self.get(call_id)

    def connecting(self) -> bool:
        """Some call is ringing or answered (its audio may be moments away)."""
        with self._cond:
            records = (self._records.get(c) for c in self._active)
            return any(r is not None and r.status in (RINGING, IN_PROGRESS) for r in records)

    def status(self) -> dict[str, object]:
        with self._cond:
            unwritten = sum(1 for r in self._records.values()
                            if r.final and not self.history.contains(r.call_id))
            return {
                "enabled": True,
                "pending": len(self._pending),
                "active": len(self._active),
                "max_concurrent": self.settings.max_concurrent,
                "total_processed": self.history.processed + unwritten,
            }

    # -- workers ---------------------------------------------------------------------------

    def _next(self) -> CallRecord | None:
        """The next queued call, once telephony is usable (until then it stays queued)."""
        while True:
            with self._cond:
                while not self._stopping and not self._pending:
                    self._cond.wait()
                if self._stopping:
                    return None
            while not self.can_dial(1.0):
                if self._stopping:
                    return None
            with self._cond:
                # Inbound calls share the slots: wait while they fill them.
                self._cond.wait_for(lambda: self._stopping or
                                    len(self._active) < self.settings.max_concurrent)
                if self._pending and not self._stopping:
                    call_id = self._pending.pop(0)
                    self._active.add(call_id)
                    return self._records[call_id]

    def _work(self) -> None:
        """A worker: never ends on an error, only on stop()."""
        while True:
            try:
                record = self._next()
                if record is None:
                    return
                self._place(record)
            except Exception:
                log.exception("call worker error; carrying on")
                with self._cond:
                    self._cond.wait(1.0)  # not a hot loop if the error repeats

    def _place(self, record: CallRecord) -> None:
        try:
            final = self.runner.run(record, lambda **changes: self._update(record.call_id,
                                                                            changes))
        except Exception as exc:  # a bug in one call must not stop the queue
            log.exception("call %s crashed", record.call_id)
            final = self._update(record.call_id, {
                "status": FAILED, "completed_at": iso(utc_now()),
                "error": f"internal error: {exc}",
            })
        finally:
            with self._cond:
                self._active.discard(record.call_id)
                self._cond.notify_all()
        log.info("call %s ended: %s%s", final.call_id, final.status,
                 f" ({final.error})" if final.error else "",
                 extra={"CALL_ID": final.call_id, "EXTENSION": final.extension})
        self._finished(final)
        self.history.maybe_prune()

    def _finished(self, record: CallRecord) -> None:
        try:
            self.on_finished(record)
        except Exception:
            log.exception("handling the end of call %s failed", record.call_id,
                          extra={"CALL_ID": record.call_id})

    def _update(self, call_id: str, changes: dict[str, object]) -> CallRecord:
        """Apply a change; it is written now or, after a storage error, by the retry loop."""
        with self._cond:
            current = self._records.get(call_id)
            if current is None:  # ended and written already: a late change has no place
                log.warning("ignoring a change to ended call %s: %s", call_id, sorted(changes))
                return self.get(call_id) or CallRecord(call_id, "", "", "", 0, status=FAILED)
            record = current.evolve(**changes)
            self._records[call_id] = record
            self._save(record)
            return record

    def _save(self, record: CallRecord) -> None:
        """Write `record`: an ended call to the history, others to the journal. On a
        storage error it stays in memory as unsaved (lock held)."""
        try:
            if record.final:
                if not self.history.contains(record.call_id):
                    self.history.append([record.to_document()])
                self._records.pop(record.call_id, None)
                self._unsaved.discard(record.call_id)
                self.live.drop([record.call_id])  # a crash before this: dropped at start
                if self.live.lines > 4 * len(self._records) + COMPACT_SLACK:
                    self._compact()
                return
            self.live.write(record.to_document())
        except StorageError:
            if record.call_id not in self._records:
                return  # in the history: only its tombstone failed, harmless
            if record.call_id not in self._unsaved:
                log.warning("call %s: its %s state is kept in memory until it can be written",
                            record.call_id, record.status, extra={"CALL_ID": record.call_id})
            self._unsaved.add(record.call_id)
            return
        self._unsaved.discard(record.call_id)
