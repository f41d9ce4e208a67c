"""The call queue: FIFO, at most `max_concurrent` calls at once, persisted so a restart keeps it.

Every change of a call is written to the store before anyone can observe it through the API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..config import QueueSettings
from ..store import Store
from .model import FAILED, IN_PROGRESS, QUEUED, RINGING, CallRecord, iso, utc_now

log = logging.getLogger(__name__)

TABLE = "calls"
KEY = "call_id"


class QueueFull(RuntimeError):
    pass


class DuplicateCallId(ValueError):
    pass


class Runner(Protocol):
    def run(self, record: CallRecord, update: Callable[..., CallRecord]) -> CallRecord: ...


class CallQueue:
    def __init__(
        self,
        store: Store,
        settings: QueueSettings,
        runner: Runner,
        can_dial: Callable[[float], bool],
        on_finished: Callable[[CallRecord], None],
    ) -> None:
        self.store = store
        self.settings = settings
        self.runner = runner
        self.can_dial = can_dial  # waits up to the given seconds for telephony to be usable
        self.on_finished = on_finished
        self.on_refused: Callable[[CallRecord], None] | None = None  # a caller told busy
        self._cond = threading.Condition()
        self._pending: list[str] = []
        self._active: set[str] = set()
        self._records: dict[str, CallRecord] = {}
        self._stopping = False
        self._workers: list[threading.Thread] = []
        self._ids = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load stored calls; calls cut off by a stop or crash are failed, queued ones resume."""
        interrupted = []
        for doc in self.store.all(TABLE):
            record = CallRecord.from_document(doc)
            if record.status in (RINGING, IN_PROGRESS):
                record = record.evolve(
                    status=FAILED, completed_at=iso(utc_now()),
                    error="the daemon stopped while the call was in progress",
                )
                self.store.upsert(TABLE, KEY, record.to_document())
                interrupted.append(record)
            self._records[record.call_id] = record
        self._pending = [
            r.call_id for r in sorted(self._records.values(), key=lambda r: r.seq)
            if r.status == QUEUED
        ]
        if self._pending:
            log.info("resuming %d queued call(s)", len(self._pending))
        for record in interrupted:
            self.on_finished(record)
        self._stopping = False
        self._workers = [
            threading.Thread(target=self._work, name=f"call-worker-{n}", daemon=True)
            for n in range(self.settings.max_concurrent)
        ]
        for worker in self._workers:
            worker.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    # -- API -------------------------------------------------------------------------------

    def _new_call_id(self) -> str:
        """out-<unix time>-<n>, as the contract shows; called with the lock held."""
        while True:
            self._ids += 1
            call_id = f"out-{int(time.time())}-{self._ids}"
            if call_id not in self._records:
                return call_id

    def submit(self, record: CallRecord) -> tuple[CallRecord, int | None]:
        """Queue a call; returns it and its queue position (None when it starts at once).

        A record without a call_id gets one here, under the same lock as the duplicate check.
        """
        with self._cond:
            if not record.call_id:
                record = record.evolve(call_id=self._new_call_id())
            if record.call_id in self._records:
                raise DuplicateCallId(record.call_id)
            if len(self._pending) >= self.settings.max_pending:
                raise QueueFull(f"the queue already holds {len(self._pending)} calls")
            seq = max((r.seq for r in self._records.values()), default=0) + 1
            record = record.evolve(seq=seq, status=QUEUED, queued_at=iso(utc_now()))
            self.store.upsert(TABLE, KEY, record.to_document())
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
            records = [r for r in self._records.values()
                       if direction is None or r.direction == direction]
        return sorted(records, key=lambda r: r.seq, reverse=True)[:limit]

    def get(self, call_id: str) -> CallRecord | None:
        with self._cond:
            return self._records.get(call_id)

    # -- inbound calls share the slots and the records ------------------------------------------

    def begin_inbound(self, record: CallRecord) -> bool:
        """Take a slot for an answered-to-be call; False (busy) when all are in use."""
        with self._cond:
            if len(self._active) >= self.settings.max_concurrent:
                return False
            record = record.evolve(seq=max((r.seq for r in self._records.values()), default=0)
                                   + 1)
            self.store.upsert(TABLE, KEY, record.to_document())
            self._records[record.call_id] = record
            self._active.add(record.call_id)
            return True

    def update(self, call_id: str, **changes: object) -> CallRecord:
        return self._update(call_id, changes)

    def end_inbound(self, call_id: str, **changes: object) -> CallRecord:
        record = self._update(call_id, changes)
        with self._cond:
            self._active.discard(call_id)
            self._cond.notify_all()
        return record

    def record_refused(self, record: CallRecord) -> None:
        """Keep a call turned away as busy, so it is listed like the rest."""
        with self._cond:
            self.store.upsert(TABLE, KEY, record.to_document())
            self._records[record.call_id] = record
        if self.on_refused is not None:
            self.on_refused(record)

    def wait_idle(self, timeout: float) -> bool:
        """True once no call is active (for an orderly shutdown, and tests)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._active, timeout)

    def connecting(self) -> bool:
        """Some call is ringing or answered (its audio may be moments away)."""
        with self._cond:
            return any(self._records[c].status in (RINGING, IN_PROGRESS) for c in self._active)

    def status(self) -> dict[str, object]:
        with self._cond:
            processed = sum(1 for r in self._records.values() if r.final)
            return {
                "enabled": True,
                "pending": len(self._pending),
                "active": len(self._active),
                "max_concurrent": self.settings.max_concurrent,
                "total_processed": processed,
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
        while True:
            record = self._next()
            if record is None:
                return
            try:
                final = self.runner.run(record, lambda **changes: self._update(record.call_id,
                                                                                changes))
            except Exception as exc:  # a bug in one call must not stop the queue
                log.exception("call %s crashed", record.call_id)
                final = self._update(record.call_id, {
                    "status": FAILED, "completed_at": iso(utc_now()),
                    "error": f"internal error: {exc}",
                })
            with self._cond:
                self._active.discard(record.call_id)
                self._cond.notify_all()
            log.info("call %s ended: %s%s", final.call_id, final.status,
                     f" ({final.error})" if final.error else "",
                     extra={"CALL_ID": final.call_id, "EXTENSION": final.extension})
            self.on_finished(final)

    def _update(self, call_id: str, changes: dict[str, object]) -> CallRecord:
        with self._cond:
            record = self._records[call_id].evolve(**changes)
            self.store.upsert(TABLE, KEY, record.to_document())
            self._records[call_id] = record
            return record
