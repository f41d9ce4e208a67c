from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipassist.faults import StorageError, StorageFaults
from sipassist.store import AtomicJSONStorage, Store

from .tmpfs import SmallDisk, small_disk  # noqa: F401 (a fixture)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "calls.json"  # "state" does not exist yet


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    store = Store(db_path)
    try:
        yield store
    finally:
        store.close()


def test_round_trip_through_a_real_file(db_path: Path) -> None:
    with Store(db_path) as store:
        store.insert("calls", {"call_id": "a", "state": "queued", "tags": ["x"]})
        store.upsert("calls", "call_id", {"call_id": "b", "state": "queued"})
        store.upsert("calls", "call_id", {"call_id": "b", "state": "ringing"})
        assert store.update("calls", "call_id", "a", {"state": "answered"})
        assert not store.update("calls", "call_id", "missing", {"state": "x"})

    with Store(db_path) as store:
        assert store.get("calls", "call_id", "a") == {
            "call_id": "a", "state": "answered", "tags": ["x"],
        }
        assert store.get("calls", "call_id", "b") == {"call_id": "b", "state": "ringing"}
        assert store.get("calls", "call_id", "zzz") is None
        assert store.search("calls", lambda d: d["state"] == "ringing") == [
            {"call_id": "b", "state": "ringing"}
        ]
        assert store.remove("calls", "call_id", "a")
        assert not store.remove("calls", "call_id", "a")
        assert store.all("calls") == [{"call_id": "b", "state": "ringing"}]
        assert store.all("other") == []


def test_returned_docs_are_copies(store: Store) -> None:
    store.insert("calls", {"call_id": "a", "tags": ["x"]})
    store.get("calls", "call_id", "a")["tags"].append("changed")  # type: ignore[index]
    store.all("calls")[0]["tags"].append("changed")
    assert store.get("calls", "call_id", "a") == {"call_id": "a", "tags": ["x"]}


def test_file_is_complete_json_after_every_write(store: Store, db_path: Path) -> None:
    writes = [
        lambda: store.insert("calls", {"call_id": "a", "n": 1}),
        lambda: store.upsert("calls", "call_id", {"call_id": "b", "n": 2}),
        lambda: store.update("calls", "call_id", "a", {"n": 3}),
        lambda: store.remove("calls", "call_id", "b"),
    ]
    for write in writes:
        write()
        data = json.loads(db_path.read_text(encoding="utf-8"))
        assert isinstance(data["calls"], dict)
    assert list(data["calls"].values()) == [{"call_id": "a", "n": 3}]
    # No temporary files are left beside the database, only its good copy.
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["calls.json", "calls.json.good"]
    assert db_path.with_name("calls.json.good").read_bytes() == db_path.read_bytes()


def test_missing_or_empty_file_reads_as_empty(db_path: Path) -> None:
    storage = AtomicJSONStorage(db_path)
    assert db_path.parent.is_dir()
    assert storage.read() is None
    db_path.write_text("  \n")
    assert storage.read() is None
    storage.write({"t": {"1": {"k": "v"}}})
    assert storage.read() == {"t": {"1": {"k": "v"}}}


@pytest.mark.parametrize("garbage", ['{"calls": {"1": {"call_id": "a"', "[1, 2]", "\xff\xfe"])
def test_corrupt_file_without_good_copy_is_moved_aside_and_store_starts_empty(
    db_path: Path, garbage: str, caplog: pytest.LogCaptureFixture
) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(garbage.encode("latin-1"))

    with caplog.at_level(logging.WARNING, logger="sipassist.store"), Store(db_path) as store:
        assert store.all("calls") == []
        store.insert("calls", {"call_id": "new"})

    aside = list(db_path.parent.glob("calls.json.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == garbage.encode("latin-1")  # nothing silently lost
    assert str(aside[0]) in caplog.text
    assert json.loads(db_path.read_text())["calls"] == {"1": {"call_id": "new"}}


def test_concurrent_inserts_all_land(store: Store, db_path: Path) -> None:
    threads, per_thread = 8, 15
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=5)
            for i in range(per_thread):
                store.insert("calls", {"call_id": f"{n}-{i}"})
        except BaseException as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30)
    assert not errors
    expected = {f"{n}-{i}" for n in range(threads) for i in range(per_thread)}
    assert {d["call_id"] for d in store.all("calls")} == expected
    with Store(db_path) as reopened:
        assert len(reopened.all("calls")) == threads * per_thread


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_damaged_file_falls_back_to_the_good_copy(
    db_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Store(db_path) as store:
        for n in range(3):
            store.insert("calls", {"call_id": f"q{n}", "status": "queued"})
    raw = db_path.read_bytes()
    db_path.write_bytes({"truncate": raw[: len(raw) // 2], "empty": b"",
                         "garbage": b"\x00\x00not json"}[damage])

    with caplog.at_level(logging.WARNING, logger="sipassist.store"), Store(db_path) as store:
        assert [d["call_id"] for d in store.all("calls")] == ["q0", "q1", "q2"]
        store.insert("calls", {"call_id": "q3", "status": "queued"})

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # once, though tinydb reads the file for every operation
    assert "calls.json.good" in errors[0] and "3 calls" in errors[0]
    [aside] = db_path.parent.glob("calls.json.corrupt-*")
    assert aside.read_bytes() != raw  # the damaged bytes are kept for a person
    assert [d["call_id"] for d in json.loads(db_path.read_text())["calls"].values()] == \
        ["q0", "q1", "q2", "q3"]


def test_read_only_then_full_then_usable_again(small_disk: SmallDisk) -> None:
    faults = StorageFaults()
    path = small_disk.path / "state" / "calls.json"
    with Store(path, faults) as store:
        store.insert("calls", {"call_id": "a"})

        small_disk.read_only()
        with pytest.raises(StorageError, match="not writable.*Fix:"):
            store.insert("calls", {"call_id": "b"})
        assert len(faults.problems()) == 1 and "not writable" in faults.problems()[0]
        assert [d["call_id"] for d in store.all("calls")] == ["a"]  # reads still work

        small_disk.writable()
        small_disk.fill()
        with pytest.raises(StorageError, match="is full.*Fix: free space"):
            store.insert("calls", {"call_id": "b"})
        assert len(faults.problems()) == 1 and "is full" in faults.problems()[0]
        assert [d["call_id"] for d in store.all("calls")] == ["a"]  # nothing half-written
        assert not list(path.parent.glob(".*.tmp"))

        small_disk.free()
        store.insert("calls", {"call_id": "b"})
        assert faults.problems() == []
    with Store(path) as store:
        assert [d["call_id"] for d in store.all("calls")] == ["a", "b"]


def test_the_retry_loop_probes_and_clears_a_problem(small_disk: SmallDisk) -> None:
    faults = StorageFaults(retry_seconds=0.05)
    retried = threading.Event()
    faults.on_retry(retried.set)
    path = small_disk.path / "calls.json"
    small_disk.fill()
    with Store(path, faults) as store:
        with pytest.raises(StorageError):
            store.insert("calls", {"call_id": "a"})
        faults.retry_now()  # the probe fails too: the problem stays
        assert faults.problems()
        faults.start()
        try:
            small_disk.free()
            assert retried.wait(5)
            deadline = time.monotonic() + 5
            while faults.problems() and time.monotonic() < deadline:
                retried.clear()
                retried.wait(1)
            assert faults.problems() == []
        finally:
            faults.stop()
