"""Threads on disk: one JSON file each in <state_dir>/threads, replaced atomically on change.

A file per thread keeps the cost of a new message at the size of that thread, not of all of
them. Memory holds every thread (bounded by [threads] max_threads and max_messages). Threads
untouched for keep_days are deleted at start and then hourly, as new ones are made.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from ..calls.model import iso, utc_now
from ..config import ThreadSettings
from ..faults import StorageFaults
from ..store import replace_atomically
from .model import API, CALL, CLOSED, Message, Thread, new_thread_id

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600.0


class ThreadError(Exception):
    """A refusal the API shows with its status and these words (and headers)."""

    status = 400

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.headers = headers or {}


class ThreadNotFound(ThreadError):
    status = 404


class ThreadClosed(ThreadError):
    status = 409


class ThreadBusy(ThreadError):
    status = 409


class ThreadLimit(ThreadError):
    status = 409


class ThreadUnavailable(ThreadError):
    """The model is busy with calls: try again shortly."""

    status = 503


class ThreadStore:
    def __init__(self, directory: Path, settings: ThreadSettings, organization: str,
                 faults: StorageFaults | None = None) -> None:
        self.directory = Path(directory)
        self.settings = settings
        self.organization = organization
        self.faults = faults or StorageFaults()
        self._lock = threading.RLock()
        self._threads: dict[str, Thread] = {}
        self._running: set[str] = set()  # threads with a run under way
        self._pruned_at = 0.0

    # -- start --------------------------------------------------------------------------------

    def load(self) -> None:
        """Read every thread file; a damaged one is moved aside (logged), never fatal."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for stale in self.directory.glob(".*.tmp"):  # a kill mid-write left it
                stale.unlink(missing_ok=True)
        except OSError as exc:  # a read-only disk: threads are read, writes wait (503)
            self.faults.failed(self.directory, exc)
        threads = {}
        for path in sorted(self.directory.glob("thread_*.json")):
            try:
                thread = Thread.from_document(json.loads(path.read_bytes()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                aside = path.with_name(path.name + f".corrupt-{int(time.time())}")
                log.error("thread file %s cannot be read (%s); moved it to %s", path, exc, aside)
                try:
                    path.replace(aside)
                except OSError:
                    pass
                continue
            threads[thread.id] = thread
        with self._lock:
            self._threads = threads
        pruned = self.prune()
        log.info("%d thread(s) restored from %s%s", len(threads) - pruned, self.directory,
                 f" ({pruned} older than {self.settings.keep_days:g} days deleted)"
                 if pruned else "")

    # -- reading ------------------------------------------------------------------------------

    def get(self, thread_id: str) -> Thread:
        with self._lock:
            thread = self._threads.get(thread_id)
        if thread is None:
            raise ThreadNotFound(f"thread '{thread_id}' not found (GET /v1/threads lists them)")
        return thread

    def for_call(self, call_id: str) -> Thread | None:
        with self._lock:
            return next((t for t in self._threads.values() if t.call_id == call_id), None)

    def list(self, agent_id: str | None = None, channel: str | None = None,
             status: str | None = None, since: str | None = None,
             limit: int = 50) -> list[Thread]:
        """Newest activity first."""
        with self._lock:
            threads = list(self._threads.values())
        chosen = [t for t in threads
                  if (agent_id is None or t.agent_id == agent_id)
                  and (channel is None or t.channel == channel)
                  and (status is None or t.status == status)
                  and (since is None or t.updated_at >= since)]
        chosen.sort(key=lambda t: (t.updated_at, t.created_at, t.id), reverse=True)
        return chosen[:limit]

    def count(self) -> int:
        with self._lock:
            return len(self._threads)

    # -- changing -----------------------------------------------------------------------------

    def create(self, agent_id: str, user_id: str, channel: str = API,
               call_id: str | None = None, additional_instructions: str = "") -> Thread:
        """A new thread, on disk when this returns (StorageError otherwise).

        Through the API the count is bounded (ThreadLimit); a call is never refused for it:
        the least recently used thread makes room (logged)."""
        self.maybe_prune()
        with self._lock:
            if len(self._threads) >= self.settings.max_threads:
                if channel != CALL:
                    raise ThreadLimit(
                        f"this box keeps at most {self.settings.max_threads} threads "
                        "([threads] max_threads): delete threads you no longer need")
                oldest = min(self._threads.values(), key=lambda t: t.updated_at)
                log.warning("%d threads kept ([threads] max_threads): deleting the least "
                            "recently used, %s, for call %s", len(self._threads), oldest.id,
                            call_id)
                self._remove(oldest.id)
            thread = Thread(id=new_thread_id(), organization_id=self.organization,
                            user_id=user_id, agent_id=agent_id, channel=channel,
                            call_id=call_id, additional_instructions=additional_instructions)
            self._write(thread)
            self._threads[thread.id] = thread
        return thread

    def call_thread(self, call_id: str, agent_id: str, user_id: str,
                    additional_instructions: str = "") -> Thread:
        """The thread of call `call_id`, made now if it has none (once, however many ask)."""
        with self._lock:
            found = self.for_call(call_id)
            if found is not None:
                return found
            return self.create(agent_id, user_id, CALL, call_id, additional_instructions)

    def append(self, thread_id: str, messages: Iterable[Message]) -> Thread:
        with self._lock:
            thread = self.get(thread_id)
            thread = thread.evolve(history=thread.history + tuple(messages))
            self._write(thread)
            self._threads[thread_id] = thread
            return thread

    def take_back(self, thread_id: str, message: Message) -> None:
        """Remove `message` again if it is still the last one (its run could not answer)."""
        with self._lock:
            thread = self._threads.get(thread_id)
            if thread is not None and thread.history and thread.history[-1] == message:
                thread = thread.evolve(history=thread.history[:-1])
                self._write(thread)
                self._threads[thread_id] = thread

    def clear(self, thread_id: str) -> Thread:
        return self._change(thread_id, history=(), checkpoint=None)

    def close(self, thread_id: str) -> Thread:
        return self._change(thread_id, status=CLOSED)

    def delete(self, thread_id: str) -> None:
        with self._lock:
            self.get(thread_id)
            if thread_id in self._running:
                raise ThreadBusy(f"thread '{thread_id}' has a run under way: delete it after")
            self._remove(thread_id)

    def _change(self, thread_id: str, **changes: object) -> Thread:
        with self._lock:
            thread = self.get(thread_id).evolve(**changes)
            self._write(thread)
            self._threads[thread_id] = thread
            return thread

    # -- runs: one at a time per thread -------------------------------------------------------

    def begin_run(self, thread_id: str, incoming: int = 1) -> Thread:
        """Claim the thread for a run adding `incoming` messages and an answer."""
        with self._lock:
            thread = self.get(thread_id)
            if thread.status == CLOSED:
                raise ThreadClosed(f"thread '{thread_id}' is closed: start a new thread "
                                   "(POST /v1/threads)")
            if thread_id in self._running:
                raise ThreadBusy(f"thread '{thread_id}' is answering another message: send "
                                 "this one when that run has ended")
            if len(thread.history) + incoming + 1 > self.settings.max_messages:
                raise ThreadLimit(
                    f"thread '{thread_id}' holds {len(thread.history)} messages, the most a "
                    f"thread keeps is {self.settings.max_messages} ([threads] max_messages): "
                    f"clear it (POST /v1/threads/{thread_id}/clear) or start a new one")
            self._running.add(thread_id)
            return thread

    def end_run(self, thread_id: str) -> None:
        with self._lock:
            self._running.discard(thread_id)

    # -- retention ----------------------------------------------------------------------------

    def maybe_prune(self) -> int:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_SECONDS:
            return 0
        return self.prune()

    def prune(self) -> int:
        """Delete threads untouched for keep_days; the number deleted."""
        self._pruned_at = time.monotonic()
        cutoff = iso(utc_now() - timedelta(days=self.settings.keep_days))
        with self._lock:
            old = [t.id for t in self._threads.values()
                   if t.updated_at < cutoff and t.id not in self._running]
            for thread_id in old:
                try:
                    self._remove(thread_id)
                except OSError as exc:
                    log.warning("cannot delete old thread %s: %s", thread_id, exc)
        if old:
            log.info("deleted %d thread(s) untouched for %g days ([threads] keep_days)",
                     len(old), self.settings.keep_days)
        return len(old)

    # -- files --------------------------------------------------------------------------------

    def path(self, thread_id: str) -> Path:
        return self.directory / f"{thread_id}.json"

    def _write(self, thread: Thread) -> None:
        raw = json.dumps(thread.to_document()).encode()
        path = self.path(thread.id)
        try:
            replace_atomically(path, lambda file: file.write(raw))
        except OSError as exc:
            raise self.faults.failed(path, exc) from exc
        self.faults.cleared(path)

    def _remove(self, thread_id: str) -> None:
        path = self.path(thread_id)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise self.faults.failed(path, exc) from exc
        self._threads.pop(thread_id, None)

