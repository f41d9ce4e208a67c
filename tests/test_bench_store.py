"""`sipassist bench store` runs end to end on a small history (the figures are its job)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from sipassist.bench.store import run
from sipassist.config import parse


def test_bench_store_writes_its_rows(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run(parse({}), sizes=(300,), posts=3, directory=tmp_path,
               json_path=tmp_path / "store.json", out=out) == 0
    [row] = json.loads((tmp_path / "store.json").read_text())["rows"]
    assert row["history"] == 300 and row["posts"] == 3
    assert row["total_processed"] == 300  # the old calls.json was moved, none lost
    assert set(row["files_bytes"]) >= {"calls-history.jsonl", "calls-live.jsonl",
                                       "calls.json.migrated"}
    assert row["post_call"]["p50_ms"] > 0
    assert "POST /call p50" in out.getvalue()
