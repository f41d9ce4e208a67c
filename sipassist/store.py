"""TinyDB on disk, written atomically with a good copy beside it, used under one lock.

A document is a plain dict keyed by a string id field such as "call_id". TinyDB is not thread
safe, so all access goes through `Store`, whose methods each hold its lock for one operation.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, TypeVar

import tinydb
from tinydb import where
from tinydb.storages import Storage
from tinydb.table import Table

from .faults import StorageError, StorageFaults

log = logging.getLogger(__name__)

T = TypeVar("T")
__all__ = ["AtomicJSONStorage", "Store", "StorageError", "open_db"]


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable: the new entry is in the directory's own blocks."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, write: Callable[[IO[bytes]], None], mode: int = 0o600,
                       sync: bool = True) -> None:
    """Write `path` through `write(file)` so that a kill at any moment leaves the old or the new
    complete file: a temporary file in the same directory, fsynced, renamed over the target
    (atomic within one filesystem), then the directory fsynced so the rename survives a power cut
    (`sync=False`: neither fsync, for a copy that is not the only one).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            if sync:
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(path.parent)


def _is_tinydb_shape(data: Any) -> bool:
    """TinyDB expects {table: {doc_id: document}}; anything else would crash it later."""
    return isinstance(data, dict) and all(
        isinstance(table, dict) and all(isinstance(doc, dict) for doc in table.values())
        for table in data.values()
    )


def _parse(raw: bytes) -> dict[str, dict[str, Any]] | None:
    """The database in `raw`, or None if it is damaged (cut short, not JSON, wrong shape)."""
    try:
        data = json.loads(raw)
    except ValueError:  # includes bad UTF-8
        return None
    return data if _is_tinydb_shape(data) else None


def _write_atomically(path: Path, raw: bytes, sync: bool = True) -> None:
    replace_atomically(path, lambda file: file.write(raw), sync=sync)


class AtomicJSONStorage(Storage):
    """JSON file storage where a kill at any moment leaves the old or the new complete file,
    with a second copy of the last write beside it for when the first is damaged anyway.

    Each write goes to a temporary file in the same directory, is fsynced, then renamed over
    the target (rename is atomic within one filesystem), and the directory is fsynced so the
    rename itself survives a power cut. The same bytes then go to `<name>.good` (not fsynced).
    A target found damaged (cut short by a failing card or a copy, not JSON) is moved aside
    and the good copy is read instead. Files are created with mode 0600.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.good = self.path.with_name(self.path.name + ".good")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._reading_good = False  # the target is damaged and could not be repaired yet
        # A kill between creating and renaming a temporary file leaves it behind.
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            try:
                stale.unlink(missing_ok=True)
            except OSError:
                pass  # a read-only directory: harmless, the next start tries again

    def read(self) -> dict[str, dict[str, Any]] | None:
        if self._reading_good:
            return self._read_good()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None  # a fresh state directory (or one a person emptied on purpose)
        data = _parse(raw)
        if data is not None:
            return data
        if not raw.strip() and not self.good.exists():
            return None  # an empty file and nothing written yet
        return self._recover(raw)

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        raw = json.dumps(data).encode("utf-8")
        _write_atomically(self.path, raw)
        self._reading_good = False
        # The copy is not fsynced: the target is durable already, and the kernel writes the
        # copy out within seconds; it is there for damage that comes later.
        _write_atomically(self.good, raw, sync=False)

    def _read_good(self) -> dict[str, dict[str, Any]] | None:
        try:
            return _parse(self.good.read_bytes())
        except FileNotFoundError:
            return None

    def _recover(self, raw: bytes) -> dict[str, dict[str, Any]] | None:
        """The target is damaged: keep it aside for a person, fall back to the good copy."""
        good = self._read_good()
        aside = self._move_aside()
        kept = f"moved it to {aside}" if aside else "could not move it aside"
        if good is None:
            log.error("%s is damaged (%d bytes, not a valid database) and there is no good "
                      "copy in %s; %s and starting empty", self.path, len(raw), self.good, kept)
            return None
        counts = ", ".join(f"{len(docs)} {table}" for table, docs in good.items()) or "empty"
        log.error("%s is damaged (%d bytes, not a valid database); %s and recovered the last "
                  "good copy from %s (%s)", self.path, len(raw), kept, self.good, counts)
        try:
            _write_atomically(self.path, json.dumps(good).encode("utf-8"))
        except OSError as exc:
            log.warning("cannot restore %s from its good copy yet (%s); reading the copy",
                        self.path, exc.strerror or exc)
            self._reading_good = True
        return good

    def _move_aside(self) -> Path | None:
        """Keep a damaged file for a person to inspect rather than overwrite it."""
        stamp = int(time.time())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 0
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            os.replace(self.path, aside)
            fsync_dir(self.path.parent)
        except OSError:
            return None
        return aside


def open_db(path: Path) -> tinydb.TinyDB:
    """A TinyDB on `path` with atomic writes. Not thread safe: share a `Store` instead."""
    return tinydb.TinyDB(path, storage=AtomicJSONStorage)


class Store:
    """Thread-safe access to a TinyDB file; documents go in and come out as plain dicts.

    A failed read or write raises StorageError (its message names the fix) and is reported to
    `faults`, so GET /health shows it until a write succeeds again.
    """

    def __init__(self, path: Path, faults: StorageFaults | None = None) -> None:
        self.path = Path(path)
        self.faults = faults or StorageFaults()
        self._lock = threading.RLock()
        self._db = self._do(lambda: open_db(self.path), write=False)

    def _do(self, operation: Callable[[], T], write: bool = True) -> T:
        with self._lock:
            try:
                result = operation()
            except OSError as exc:
                raise self.faults.failed(self.path, exc) from exc
            if write:
                self.faults.cleared(self.path)
            return result

    def _table(self, name: str) -> Table:
        # No query cache: its results share dicts with the caller, and every read is
        # from disk anyway, so the cache buys little.
        return self._db.table(name, cache_size=0)

    def insert(self, table: str, doc: dict[str, Any]) -> None:
        self._do(lambda: self._table(table).insert(dict(doc)))

    def upsert(self, table: str, key_field: str, doc: dict[str, Any]) -> None:
        """Insert `doc`, or merge its fields into the document with the same key."""
        def upsert() -> None:
            # One write: tinydb's own upsert writes the file for its update, then its insert.
            tab = self._table(table)
            found = tab.get(where(key_field) == doc[key_field])
            if found is None:
                tab.insert(dict(doc))
            else:
                tab.update(dict(doc), doc_ids=[found.doc_id])

        self._do(upsert)

    def get(self, table: str, key_field: str, value: Any) -> dict[str, Any] | None:
        doc = self._do(lambda: self._table(table).get(where(key_field) == value), write=False)
        return dict(doc) if doc is not None else None

    def all(self, table: str) -> list[dict[str, Any]]:
        return self._do(lambda: [dict(doc) for doc in self._table(table).all()], write=False)

    def update(self, table: str, key_field: str, value: Any, fields: dict[str, Any]) -> bool:
        """Set `fields` on the document whose `key_field` is `value`; False if there is none."""
        return bool(self._do(
            lambda: self._table(table).update(dict(fields), where(key_field) == value)))

    def remove(self, table: str, key_field: str, value: Any) -> bool:
        return bool(self._do(lambda: self._table(table).remove(where(key_field) == value)))

    def remove_many(self, table: str, key_field: str, values: Iterable[Any]) -> int:
        """Remove every document whose `key_field` is in `values`, in one write."""
        wanted = set(values)
        if not wanted:
            return 0
        # A set test: Query.one_of looks through a list, quadratic for a big migration.
        test = where(key_field).test(lambda value: value in wanted)
        return len(self._do(lambda: self._table(table).remove(test)))

    def search(
        self, table: str, predicate: Callable[[dict[str, Any]], bool]
    ) -> list[dict[str, Any]]:
        return [doc for doc in self.all(table) if predicate(doc)]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
