"""TinyDB on disk, written atomically and used under one lock.

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
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import tinydb
from tinydb import where
from tinydb.storages import Storage
from tinydb.table import Table

log = logging.getLogger(__name__)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable: the new entry is in the directory's own blocks."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, write: Callable[[IO[bytes]], None], mode: int = 0o600) -> None:
    """Write `path` through `write(file)` so that a kill at any moment leaves the old or the new
    complete file: a temporary file in the same directory, fsynced, renamed over the target
    (atomic within one filesystem), then the directory fsynced so the rename survives a power cut.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _is_tinydb_shape(data: Any) -> bool:
    """TinyDB expects {table: {doc_id: document}}; anything else would crash it later."""
    return isinstance(data, dict) and all(
        isinstance(table, dict) and all(isinstance(doc, dict) for doc in table.values())
        for table in data.values()
    )


class AtomicJSONStorage(Storage):
    """JSON file storage where a kill at any moment leaves the old or the new complete file.

    Each write goes to a temporary file in the same directory, is fsynced, then renamed over
    the target (rename is atomic within one filesystem), and the directory is fsynced so the
    rename itself survives a power cut. The file is created with mode 0600.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A kill between creating and renaming a temporary file leaves it behind.
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            stale.unlink(missing_ok=True)

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        try:
            data = json.loads(raw)
        except ValueError:  # includes bad UTF-8
            data = None
        if not _is_tinydb_shape(data):
            self._move_aside()
            return None
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        replace_atomically(self.path, lambda file: file.write(json.dumps(data).encode()))

    def _move_aside(self) -> None:
        """Keep a corrupt file for a person to inspect rather than overwrite it."""
        stamp = int(time.time())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 0
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        os.replace(self.path, aside)
        fsync_dir(self.path.parent)
        log.warning(
            "%s is not a valid database; moved it to %s and starting empty", self.path, aside
        )


def open_db(path: Path) -> tinydb.TinyDB:
    """A TinyDB on `path` with atomic writes. Not thread safe: share a `Store` instead."""
    return tinydb.TinyDB(path, storage=AtomicJSONStorage)


class Store:
    """Thread-safe access to a TinyDB file; documents go in and come out as plain dicts."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = open_db(self.path)
        self._lock = threading.RLock()

    def _table(self, name: str) -> Table:
        # No query cache: its results share dicts with the caller, and every read is
        # from disk anyway, so the cache buys little.
        return self._db.table(name, cache_size=0)

    def insert(self, table: str, doc: dict[str, Any]) -> None:
        with self._lock:
            self._table(table).insert(dict(doc))

    def upsert(self, table: str, key_field: str, doc: dict[str, Any]) -> None:
        """Insert `doc`, or merge its fields into the document with the same key."""
        with self._lock:
            self._table(table).upsert(dict(doc), where(key_field) == doc[key_field])

    def get(self, table: str, key_field: str, value: Any) -> dict[str, Any] | None:
        with self._lock:
            doc = self._table(table).get(where(key_field) == value)
        return dict(doc) if doc is not None else None

    def all(self, table: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(doc) for doc in self._table(table).all()]

    def update(self, table: str, key_field: str, value: Any, fields: dict[str, Any]) -> bool:
        """Set `fields` on the document whose `key_field` is `value`; False if there is none."""
        with self._lock:
            return bool(self._table(table).update(dict(fields), where(key_field) == value))

    def remove(self, table: str, key_field: str, value: Any) -> bool:
        with self._lock:
            return bool(self._table(table).remove(where(key_field) == value))

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
