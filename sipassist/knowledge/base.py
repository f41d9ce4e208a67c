"""The knowledge base: named tables of text rows, searched by meaning.

Every change is checked whole against the [knowledge] limits, embedded, written to disk and only
then made visible, so a refused or failed request leaves nothing behind. Searches read the current
table without taking the lock: writers build a new Table and swap it in.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..calls.model import iso, utc_now
from ..config import KnowledgeSettings
from . import storage
from .embedding import DIMENSION, Embedder
from .errors import AlreadyExists, InvalidInput, LimitExceeded, NotFound
from .questions import QuestionShaper
from .storage import Row, Table

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_DESCRIPTION = 500
MAX_QUERY_CHARS = 1000
MAX_LIMIT = 50


@dataclass(frozen=True)
class NewRow:
    content: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Hit:
    """A search result: the row and its cosine similarity to the query (-1..1, higher is closer)."""

    table: str
    id: str
    content: str
    metadata: dict[str, Any]
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "content": self.content, "metadata": self.metadata,
                "score": self.score}


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(f"table name {name!r}: use 1 to 64 lowercase letters, digits, '_' or"
                           " '-', starting with a letter or digit (for example \"clinic_faq\")")
    return name


class KnowledgeBase:
    """Tables of rows in `directory`, restored from it at construction."""

    def __init__(self, directory: Path, embedder: Embedder,
                 limits: KnowledgeSettings = KnowledgeSettings()) -> None:
        self.directory = Path(directory)
        self.embedder = embedder
        self.limits = limits
        self._lock = threading.Lock()  # one writer at a time; searches need none
        self._questions = QuestionShaper(embedder.embed)
        self._tables = storage.load_all(self.directory, embedder.name, DIMENSION,
                                        embedder.embed)
        if self._tables:
            log.info("knowledge base: %d table(s), %d rows", len(self._tables),
                     sum(len(t.rows) for t in self._tables.values()))

    # -- tables ------------------------------------------------------------------------------

    def _get(self, name: str) -> Table:
        table = self._tables.get(name)
        if table is None:
            raise NotFound(f"no knowledge table {name!r}: create it with POST /v1/knowledge")
        return table

    def tables(self) -> list[dict[str, Any]]:
        """name, description, rows, created_at, updated_at of each table, by name."""
        return [t.info() for t in sorted(self._tables.values(), key=lambda t: t.name)]

    def table(self, name: str) -> dict[str, Any]:
        return self._get(name).info()

    def exists(self, name: str) -> bool:
        return name in self._tables

    def create(self, name: str, description: str = "") -> dict[str, Any]:
        check_name(name)
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise InvalidInput(f"description: write text of at most {MAX_DESCRIPTION} characters")
        with self._lock:
            if name in self._tables:
                raise AlreadyExists(f"knowledge table {name!r} already exists: pick another name"
                                    " or add rows to it")
            if storage.exists(self.directory, name):  # left out at start: never overwrite it
                raise AlreadyExists(f"knowledge table {name!r} is on disk but could not be"
                                    " loaded (see the daemon's log): restart once it is fixed")
            if len(self._tables) >= self.limits.max_tables:
                raise LimitExceeded(f"there are already {len(self._tables)} knowledge tables, the"
                                    f" limit (knowledge.max_tables): delete one first")
            now = iso(utc_now())
            table = Table(name=name, description=description.strip(), created_at=now,
                          updated_at=now, model=self.embedder.name,
                          vectors=np.zeros((0, DIMENSION), np.float32))
            self._tables[name] = storage.save(self.directory, table, None)
            log.info("knowledge table %s created", name)
            return self._tables[name].info()

    def drop(self, name: str) -> None:
        with self._lock:
            table = self._get(name)
            storage.delete(self.directory, table)
            del self._tables[name]
            log.info("knowledge table %s deleted (%d rows)", name, len(table.rows))

    # -- rows --------------------------------------------------------------------------------

    def check_rows(self, rows: Sequence[NewRow]) -> list[NewRow]:
        """The rows with content trimmed, or InvalidInput/LimitExceeded naming the bad one."""
        if not rows:
            raise InvalidInput("rows: give at least one row")
        checked = []
        for index, row in enumerate(rows):
            where = f"rows[{index}]"
            if not isinstance(row.content, str) or not row.content.strip():
                raise InvalidInput(f"{where}.content: write the row's text (a non-empty string)")
            content = row.content.strip()
            if len(content) > self.limits.max_row_chars:
                raise LimitExceeded(f"{where}.content has {len(content)} characters, more than"
                                    f" knowledge.max_row_chars = {self.limits.max_row_chars}:"
                                    " split it into several rows")
            if not isinstance(row.metadata, dict):
                raise InvalidInput(f"{where}.metadata: write a JSON object, or leave it out")
            size = len(json.dumps(row.metadata, ensure_ascii=False).encode())
            if size > self.limits.max_metadata_bytes:
                raise LimitExceeded(f"{where}.metadata is {size} bytes as JSON, more than"
                                    f" knowledge.max_metadata_bytes ="
                                    f" {self.limits.max_metadata_bytes}")
            checked.append(NewRow(content, row.metadata))
        return checked

    def _check_room(self, table: Table, adding: int) -> None:
        if len(table.rows) + adding > self.limits.max_rows:
            raise LimitExceeded(f"knowledge table {table.name!r} has {len(table.rows)} rows;"
                                f" {adding} more would pass knowledge.max_rows ="
                                f" {self.limits.max_rows}")

    def add(self, name: str, rows: Sequence[NewRow]) -> list[Row]:
        """Embed and store `rows` (all or none); returns them with their ids."""
        rows = self.check_rows(rows)
        self._check_room(self._get(name), len(rows))
        vectors = self.embedder.embed([row.content for row in rows])  # slow: outside the lock
        with self._lock:
            table = self._get(name)  # dropped (or filled) meanwhile?
            self._check_room(table, len(rows))
            now = iso(utc_now())
            added = tuple(Row(secrets.token_hex(8), row.content, row.metadata, now)
                          for row in rows)
            changed = replace(table, rows=table.rows + added, updated_at=now,
                              vectors=np.concatenate([table.vectors, vectors]))
            self._tables[name] = storage.save(self.directory, changed, table)
        return list(added)

    def rows(self, name: str, offset: int = 0, limit: int = 50) -> tuple[list[Row], int]:
        """Rows in insertion order from `offset`, and the table's row count."""
        table = self._get(name)
        return list(table.rows[offset:offset + limit]), len(table.rows)

    def remove_row(self, name: str, row_id: str) -> None:
        with self._lock:
            table = self._get(name)
            index = next((i for i, row in enumerate(table.rows) if row.id == row_id), None)
            if index is None:
                raise NotFound(f"knowledge table {name!r} has no row {row_id!r}")
            changed = replace(table, rows=table.rows[:index] + table.rows[index + 1:],
                              vectors=np.delete(table.vectors, index, axis=0),
                              updated_at=iso(utc_now()))
            self._tables[name] = storage.save(self.directory, changed, table)

    # -- search ------------------------------------------------------------------------------

    def search(self, table: str, query: str, limit: int = 5,
               min_score: float = 0.0) -> list[Hit]:
        """The rows of `table` closest in meaning to `query`, best first, scoring >= min_score."""
        return self.search_tables([table], query, limit, min_score)

    def search_tables(self, tables: Iterable[str], query: str, limit: int = 5,
                      min_score: float = 0.0, skip_missing: bool = False) -> list[Hit]:
        """As `search`, over several tables at once (the query is embedded once).

        With `skip_missing`, a table that does not exist (deleted since an agent was given it)
        is passed over instead of raising NotFound.
        """
        found = {name: self._tables.get(name) for name in tables}
        if not skip_missing:
            for name in found:
                self._get(name)  # NotFound for the first missing one
        chosen = [table for table in found.values() if table is not None]
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query: write the question or text to search for")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput(f"query: at most {MAX_QUERY_CHARS} characters")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit: write a whole number from 1 to {MAX_LIMIT}")
        if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) \
                or not -1.0 <= min_score <= 1.0:
            raise InvalidInput("min_score: write a number from -1 to 1 (cosine similarity)")
        chosen = [table for table in chosen if table.rows]
        if not chosen:
            return []
        vector = self._questions.shape(self.embedder.embed([query.strip()])[0])
        hits: list[Hit] = []
        for table in chosen:
            # Not `vectors @ vector`: OpenBLAS runs that matrix-vector product on all its threads
            # from ~10k rows, which on a busy box took 7-20 ms instead of einsum's ~1 ms.
            scores = np.einsum("ij,j->i", table.vectors, vector)
            count = min(limit, len(scores))
            best = np.argpartition(-scores, count - 1)[:count]
            hits.extend(Hit(table.name, table.rows[i].id, table.rows[i].content,
                            table.rows[i].metadata, round(float(scores[i]), 4))
                        for i in best if scores[i] >= min_score)
        hits.sort(key=lambda hit: hit.score, reverse=True)
        return hits[:limit]
