"""One knowledge table on disk: `<name>.json` (rows) and `<name>.<generation>.npy` (their vectors).

The JSON file is the commit point: it names the vector file that belongs to it, row i with vector
i. A save writes a new vector file, then replaces the JSON file atomically, then removes the old
vector file, so a kill at any moment leaves the old or the new table whole, plus at most a stray
vector file that the next load removes. Vectors can always be computed again from the rows: a
missing or unreadable vector file (or one of another model) is rebuilt, never fatal.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..store import fsync_dir, replace_atomically

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class Row:
    id: str
    content: str
    metadata: dict[str, Any]
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "content": self.content, "metadata": self.metadata,
                "created_at": self.created_at}


@dataclass(frozen=True)
class Table:
    """A table as it is on disk; a change makes a new Table (searches read one without locks)."""

    name: str
    description: str
    created_at: str
    updated_at: str
    model: str  # the embedding model of the vectors
    rows: tuple[Row, ...] = ()
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    vectors_file: str | None = None  # None while the table is empty

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "rows": len(self.rows),
                "created_at": self.created_at, "updated_at": self.updated_at}


def _json_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.json"


def _write_vectors(directory: Path, name: str, vectors: np.ndarray) -> str:
    filename = f"{name}.{secrets.token_hex(4)}.npy"
    replace_atomically(directory / filename, lambda file: np.save(file, vectors))
    return filename


def save(directory: Path, table: Table, previous: Table | None) -> Table:
    """Write `table`, which replaces `previous` (None for a new one); returns it as saved.

    Its vectors are written only if they are not `previous`'s very array.
    """
    directory.mkdir(parents=True, exist_ok=True)
    old = previous.vectors_file if previous else None
    filename = None
    if table.rows:
        same = previous is not None and table.vectors is previous.vectors and old is not None
        filename = old if same else _write_vectors(directory, table.name, table.vectors)
    document = {
        "format": FORMAT, "name": table.name, "description": table.description,
        "created_at": table.created_at, "updated_at": table.updated_at, "model": table.model,
        "vectors": filename, "rows": [row.to_json() for row in table.rows],
    }
    data = json.dumps(document, ensure_ascii=False).encode()
    try:
        replace_atomically(_json_path(directory, table.name), lambda file: file.write(data))
    except BaseException:
        if filename and filename != old:
            (directory / filename).unlink(missing_ok=True)
        raise
    if old and old != filename:
        (directory / old).unlink(missing_ok=True)
    return replace(table, vectors_file=filename)


def exists(directory: Path, name: str) -> bool:
    """A table file by this name is on disk (loaded or not)."""
    return _json_path(directory, name).exists()


def delete(directory: Path, table: Table) -> None:
    """Remove a table: its JSON file first (the commit point), then its vectors."""
    _json_path(directory, table.name).unlink(missing_ok=True)
    fsync_dir(directory)
    if table.vectors_file:
        (directory / table.vectors_file).unlink(missing_ok=True)


def _parse(document: Any, stem: str) -> Table:
    """A Table (vectors not yet loaded) from a JSON document; ValueError if it is not one."""
    if not isinstance(document, dict) or document.get("format") != FORMAT \
            or document.get("name") != stem or not isinstance(document.get("rows"), list):
        raise ValueError("not a knowledge table file of this version")
    rows = []
    for item in document["rows"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) \
                or not isinstance(item.get("content"), str) \
                or not isinstance(item.get("metadata"), dict):
            raise ValueError("a row without id, content or metadata")
        rows.append(Row(item["id"], item["content"], item["metadata"],
                        str(item.get("created_at", ""))))
    return Table(name=stem, description=str(document.get("description", "")),
                 created_at=str(document.get("created_at", "")),
                 updated_at=str(document.get("updated_at", "")),
                 model=str(document.get("model", "")), rows=tuple(rows),
                 vectors_file=document.get("vectors"))


def _load_vectors(directory: Path, table: Table, model: str, dimension: int) -> np.ndarray | None:
    """The table's stored vectors, or None if they must be computed again (and why, logged)."""
    if not table.rows:
        return np.zeros((0, dimension), np.float32)
    if table.model != model:
        log.warning("knowledge table %s was embedded by %s: embedding it again with %s",
                    table.name, table.model, model)
        return None
    if not isinstance(table.vectors_file, str):
        log.warning("knowledge table %s has no vector file: embedding its rows again", table.name)
        return None
    try:
        vectors = np.load(directory / table.vectors_file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("knowledge table %s: vectors unreadable (%s): embedding its rows again",
                    table.name, exc)
        return None
    if vectors.dtype != np.float32 or vectors.shape != (len(table.rows), dimension):
        log.warning("knowledge table %s: vectors of shape %s for %d rows: embedding them again",
                    table.name, vectors.shape, len(table.rows))
        return None
    return vectors


def _move_aside(path: Path, reason: str) -> None:
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    os.replace(path, aside)
    log.warning("%s is not a knowledge table (%s); moved it to %s", path, reason, aside)


def load_all(directory: Path, model: str, dimension: int,
             embed: Callable[[list[str]], np.ndarray]) -> dict[str, Table]:
    """Every table in `directory`; `embed` rebuilds vectors that are missing or of another model.

    Unreadable table files are moved aside (kept for a person to look at), stray vector and
    temporary files left by a kill are removed.
    """
    tables: dict[str, Table] = {}
    if not directory.is_dir():
        return tables
    wanted = set()
    for path in sorted(directory.glob("*.json")):
        try:
            table = _parse(json.loads(path.read_bytes()), path.stem)
        except (OSError, ValueError) as exc:  # ValueError includes bad JSON and bad UTF-8
            _move_aside(path, str(exc))
            continue
        wanted.add(table.vectors_file)
        vectors = _load_vectors(directory, table, model, dimension)
        if vectors is None:
            try:
                vectors = embed([row.content for row in table.rows])
                table = save(directory, replace(table, model=model, vectors=vectors), table)
            except Exception as exc:  # no model, disk full: the daemon goes on without it
                log.error("knowledge table %s left out until the next start: %s", table.name, exc)
                continue
        tables[table.name] = replace(table, vectors=vectors)
        wanted.add(table.vectors_file)
    for leftover in [*directory.glob("*.npy"), *directory.glob(".*.tmp")]:
        if leftover.name not in wanted:
            leftover.unlink(missing_ok=True)
    return tables
