"""Finished calls: an append-only JSON-lines file, so an update costs the same at any size.

Queued and active calls live in the small journal `calls-live.jsonl`; a call that ends is appended here as
one line (fsynced) and then removed from there. Memory holds only an index (call_id to offset,
seq, direction, end time), and a record is read back from the file when asked for.

A line cut short by a crash or a full disk is ignored (and cut off); an unreadable line in the
middle is skipped with a warning. Calls older than `keep_days`, and the oldest beyond
`keep_max`, are pruned at start and whenever the file has grown a tenth past `keep_max` or an
hour has passed, by rewriting the file atomically. The first line of a pruned file,
`{"pruned": N}`, keeps the count of calls ever processed.
"""

from __future__ import annotations

import bisect
import heapq
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from ..faults import StorageError, StorageFaults
from .model import parse_iso

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600.0


class _Entry(NamedTuple):
    offset: int
    length: int
    seq: int
    direction: str
    ended: float  # unix time the call ended (or was queued, if it never started)


def _ended(doc: dict[str, Any]) -> float:
    moment = parse_iso(doc.get("completed_at") or doc.get("queued_at"))
    return moment.timestamp() if moment else 0.0


class CallHistory:
    def __init__(self, path: Path, keep_days: float, keep_max: int,
                 faults: StorageFaults | None = None) -> None:
        self.path = Path(path)
        self.keep_days = keep_days
        self.keep_max = keep_max
        self.faults = faults or StorageFaults()
        self._lock = threading.Lock()
        self._index: dict[str, _Entry] = {}
        self._order: list[tuple[int, str]] = []  # (seq, call_id), sorted: for recent()
        self._pruned = 0  # calls processed and since pruned (from the first line)
        self._size = 0  # bytes of whole lines; anything past it is a torn write
        self._max_seq = 0
        self._last_prune = 0.0

    # -- reading ------------------------------------------------------------------------------

    def load(self) -> None:
        """Index the file; cut off a torn last line; then prune."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise self.faults.failed(self.path, exc) from exc
        index, pruned, size, bad = self._scan(data)
        if bad:
            log.warning("%s: skipped %d unreadable line(s) of finished calls", self.path, bad)
        if size < len(data):
            log.warning("%s: ignoring a torn last line (%d bytes) from an interrupted write",
                        self.path, len(data) - size)
        with self._lock:
            self._index, self._pruned, self._size = index, pruned, size
            self._order = sorted((e.seq, call_id) for call_id, e in index.items())
            self._max_seq = max((e.seq for e in index.values()), default=0)
        self.prune()

    @staticmethod
    def _scan(data: bytes) -> tuple[dict[str, _Entry], int, int, int]:
        """(index, pruned count, size of whole lines, unreadable lines) of the file's bytes."""
        index: dict[str, _Entry] = {}
        pruned = bad = offset = 0
        while offset < len(data):
            end = data.find(b"\n", offset)
            if end < 0:
                break  # torn: the write of the last line did not finish
            line = data[offset:end]
            try:
                doc = json.loads(line)
                if "call_id" in doc:
                    index[str(doc["call_id"])] = _Entry(
                        offset, end - offset, int(doc.get("seq") or 0),
                        str(doc.get("direction") or "outbound"), _ended(doc))
                else:
                    pruned += int(doc.get("pruned", 0))
            except (ValueError, TypeError, AttributeError):
                if line.strip():
                    bad += 1
            offset = end + 1
        return index, pruned, offset, bad

    def contains(self, call_id: str) -> bool:
        return call_id in self._index  # one dict lookup: safe without the lock

    @property
    def max_seq(self) -> int:
        return self._max_seq

    @property
    def processed(self) -> int:
        """Calls ever finished: those kept plus those pruned."""
        with self._lock:
            return len(self._index) + self._pruned

    def get(self, call_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._index.get(call_id)
            if entry is None:
                return None
            return self._read([entry])[0]

    def recent(self, limit: int, direction: str | None = None) -> list[dict[str, Any]]:
        """The `limit` latest calls (by seq), latest first."""
        with self._lock:
            latest = []
            for seq, call_id in reversed(self._order):
                entry = self._index[call_id]
                if entry.seq == seq and (direction is None or entry.direction == direction):
                    latest.append(entry)
                    if len(latest) >= limit:
                        break
            return self._read(latest)

    def _read(self, entries: list[_Entry]) -> list[dict[str, Any]]:
        """Call with the lock held."""
        if not entries:  # nothing ended yet: the file need not exist
            return []
        try:
            with open(self.path, "rb") as file:
                docs = []
                for entry in entries:
                    file.seek(entry.offset)
                    docs.append(json.loads(file.read(entry.length)))
                return docs
        except OSError as exc:
            raise StorageError(f"cannot read {self.path} ({exc.strerror or exc})") from exc

    # -- writing ------------------------------------------------------------------------------

    def append(self, docs: list[dict[str, Any]]) -> None:
        """Add finished calls durably (one fsync), or raise StorageError having added none."""
        if not docs:
            return
        lines = [json.dumps(doc, separators=(",", ":")).encode("utf-8") + b"\n" for doc in docs]
        with self._lock:
            try:
                # Opened for each append: an fd held open for writing would keep the
                # filesystem from being remounted read-only (or unmounted) by an admin.
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    if os.fstat(fd).st_size != self._size:
                        os.ftruncate(fd, self._size)  # a torn write from before goes first
                    data = b"".join(lines)
                    written = 0
                    try:
                        while written < len(data):
                            written += os.write(fd, data[written:])
                        os.fsync(fd)
                    except OSError:
                        self._cut(fd)
                        raise
                finally:
                    os.close(fd)
            except OSError as exc:
                raise self.faults.failed(self.path, exc) from exc
            offset = self._size
            for doc, line in zip(docs, lines):
                entry = _Entry(offset, len(line) - 1, int(doc.get("seq") or 0),
                               str(doc.get("direction") or "outbound"), _ended(doc))
                earlier = self._index.get(str(doc["call_id"]))
                self._index[str(doc["call_id"])] = entry
                if earlier is None or earlier.seq != entry.seq:  # recent() skips stale seqs
                    bisect.insort(self._order, (entry.seq, str(doc["call_id"])))
                self._max_seq = max(self._max_seq, entry.seq)
                offset += len(line)
            self._size = offset
        self.faults.cleared(self.path)

    def _cut(self, fd: int) -> None:
        """Undo a partial append (a full disk takes part of it), so no torn line stays."""
        try:
            os.ftruncate(fd, self._size)
        except OSError:
            pass  # the next append, or the next start, cuts it

    def close(self) -> None:
        """Nothing stays open between appends; kept for symmetry with the other stores."""

    # -- pruning ------------------------------------------------------------------------------

    def maybe_prune(self) -> int:
        """Prune when the file has grown a tenth past keep_max or an hour has passed."""
        slack = max(self.keep_max // 10, 100)
        if len(self._index) <= self.keep_max + slack and \
                time.time() - self._last_prune < PRUNE_EVERY_SECONDS:
            return 0
        return self.prune()

    def prune(self, now: float | None = None) -> int:
        """Drop calls older than keep_days and the oldest beyond keep_max; the number
        dropped. The file is rewritten atomically; on a storage error nothing changes."""
        now = time.time() if now is None else now
        cutoff = now - self.keep_days * 86400
        with self._lock:
            self._last_prune = time.time()
            young = [(call_id, e) for call_id, e in self._index.items() if e.ended >= cutoff]
            keep = heapq.nlargest(self.keep_max, young, key=lambda item: item[1].seq)
            dropped = len(self._index) - len(keep)
            if dropped <= 0:
                return 0
            keep.sort(key=lambda item: item[1].offset)  # the file's order
            try:
                self._rewrite(keep, self._pruned + dropped)
            except OSError as exc:
                log.warning("cannot prune %s yet: %s", self.path, exc.strerror or exc)
                return 0
        log.info("pruned %d finished call(s) older than %g days or beyond the newest %d from %s",
                 dropped, self.keep_days, self.keep_max, self.path)
        return dropped

    def _rewrite(self, keep: list[tuple[str, _Entry]], pruned: int) -> None:
        """Write the kept lines to a new file and rename it over this one (lock held)."""
        header = json.dumps({"pruned": pruned}).encode("utf-8") + b"\n"
        index: dict[str, _Entry] = {}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.",
                                   suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, open(self.path, "rb") as src:
                out.write(header)
                offset = len(header)
                for call_id, entry in keep:
                    src.seek(entry.offset)
                    out.write(src.read(entry.length) + b"\n")
                    index[call_id] = entry._replace(offset=offset)
                    offset += entry.length + 1
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._index, self._pruned, self._size = index, pruned, offset
        self._order = sorted((e.seq, call_id) for call_id, e in index.items())
