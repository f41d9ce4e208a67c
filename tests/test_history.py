"""The finished-calls history: append-only JSON lines, torn lines, pruning by age and count."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from sipassist.calls.history import CallHistory
from sipassist.faults import StorageError, StorageFaults

from .tmpfs import SmallDisk, small_disk  # noqa: F401 (a fixture)

DAY = 86400.0


def doc(n: int, ended: float | None = None, direction: str = "outbound") -> dict:
    ended = time.time() if ended is None else ended
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ended))
    return {"call_id": f"c{n}", "seq": n, "status": "completed", "direction": direction,
            "queued_at": stamp, "completed_at": stamp, "message": "hé " * n}


def opened(path: Path, keep_days: float = 30, keep_max: int = 1000) -> CallHistory:
    history = CallHistory(path, keep_days, keep_max)
    history.load()
    return history


def test_append_get_recent_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    history = opened(path)
    history.append([doc(1), doc(2, direction="inbound")])
    history.append([doc(3)])
    assert history.get("c2")["direction"] == "inbound"
    history.close()

    history = opened(path)
    assert history.processed == 3 and history.max_seq == 3
    assert [d["call_id"] for d in history.recent(2)] == ["c3", "c2"]
    assert [d["call_id"] for d in history.recent(10, "outbound")] == ["c3", "c1"]
    assert history.get("c1")["message"] == "hé "
    assert history.get("nope") is None
    assert history.contains("c3") and not history.contains("c4")
    history.close()


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "h.jsonl"
    history = opened(path)
    history.append([doc(1), doc(2)])
    history.close()
    good = path.read_bytes()
    path.write_bytes(good + json.dumps(doc(3)).encode()[:25])  # a write cut short

    with caplog.at_level(logging.WARNING, logger="sipassist.calls.history"):
        history = opened(path)
    assert "torn last line" in caplog.text
    assert history.processed == 2 and not history.contains("c3")
    history.append([doc(4)])
    history.close()
    assert path.read_bytes() == good + json.dumps(doc(4), separators=(",", ":")).encode() + b"\n"
    assert opened(path).processed == 3


def test_an_unreadable_middle_line_is_skipped(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps(doc(1)) + "\n{garbage\n" + json.dumps(doc(2)) + "\n")
    with caplog.at_level(logging.WARNING, logger="sipassist.calls.history"):
        history = opened(path)
    assert "skipped 1 unreadable line" in caplog.text
    assert [d["call_id"] for d in history.recent(5)] == ["c2", "c1"]


def test_pruned_by_count_and_age_keeping_the_processed_count(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    now = time.time()
    history = opened(path, keep_days=30, keep_max=5)
    history.append([doc(n, now - 40 * DAY) for n in range(1, 4)])  # too old
    history.append([doc(n, now - DAY) for n in range(4, 12)])  # 8 young; 5 may stay
    assert history.processed == 11

    assert history.prune(now) == 6
    assert history.processed == 11
    assert [d["call_id"] for d in history.recent(100)] == [f"c{n}" for n in range(11, 6, -1)]
    history.append([doc(12)])
    history.close()

    history = opened(path, keep_days=30, keep_max=5)  # prunes at load too
    assert history.processed == 12
    assert [d["call_id"] for d in history.recent(100)] == [f"c{n}" for n in range(12, 7, -1)]
    assert history.get("c12")["message"] == "hé " * 12
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_full_disk_adds_nothing_and_leaves_no_torn_line(small_disk: SmallDisk) -> None:
    path = small_disk.path / "h.jsonl"
    faults = StorageFaults()
    history = CallHistory(path, 30, 1000, faults)
    history.load()
    history.append([doc(1)])
    before = path.read_bytes()
    small_disk.fill()
    big = [doc(n) | {"message": "x" * 20000} for n in range(2, 6)]  # more than a page
    with pytest.raises(StorageError, match="is full"):
        history.append(big)
    assert path.read_bytes() == before
    assert not history.contains("c2") and faults.problems()
    small_disk.free()
    history.append(big)
    assert faults.problems() == []
    history.close()
    assert opened(path).processed == 5
