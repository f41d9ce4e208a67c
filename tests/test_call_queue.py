"""The call queue on real files: workers that survive errors, ended calls in the history,
nothing accepted lost on a storage error, a damaged calls.json recovered from its good copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sipassist.calls.history import CallHistory
from sipassist.calls.live import LiveCalls
from sipassist.calls.model import COMPLETED, IN_PROGRESS, QUEUED, CallRecord, iso, utc_now
from sipassist.calls.queue import TABLE, CallQueue, DuplicateCallId
from sipassist.config import QueueSettings
from sipassist.faults import StorageError, StorageFaults
from sipassist.store import Store

from .tmpfs import SmallDisk, small_disk  # noqa: F401 (a fixture)

WAIT = 10.0


class ScriptedRunner:
    """Places calls by script: each call_id's steps run in turn; the default completes it."""

    def __init__(self) -> None:
        self.steps: dict[str, Callable[[CallRecord, Callable[..., CallRecord]], CallRecord]] = {}
        self.ran: list[str] = []
        self.release = threading.Event()
        self.release.set()
        self.killed = False
        self.in_progress = threading.Event()  # set when a call has been answered

    def kill(self) -> None:
        """Like a SIGKILL for the call in hand: its thread ends without another write."""
        self.killed = True
        self.release.set()

    def run(self, record: CallRecord, update: Callable[..., CallRecord]) -> CallRecord:
        self.ran.append(record.call_id)
        update(status=IN_PROGRESS, started_at=iso(utc_now()))
        self.in_progress.set()
        assert self.release.wait(WAIT)
        if self.killed:
            raise SystemExit  # not an Exception: no handler writes anything
        step = self.steps.get(record.call_id)
        if step:
            return step(record, update)
        return update(status=COMPLETED, completed_at=iso(utc_now()))


class Ended:
    """on_finished: records ended calls; can be told to raise."""

    def __init__(self) -> None:
        self.calls: list[CallRecord] = []
        self.cond = threading.Condition()
        self.fail = False

    def __call__(self, record: CallRecord) -> None:
        with self.cond:
            self.calls.append(record)
            self.cond.notify_all()
        if self.fail:
            raise RuntimeError("a broken on_finished")

    def wait(self, count: int) -> list[CallRecord]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.calls) >= count, WAIT), self.calls
            return list(self.calls)


class Queue:
    """A CallQueue on a state directory, restartable."""

    def __init__(self, state: Path, faults: StorageFaults | None = None) -> None:
        self.state = state
        self.faults = faults or StorageFaults()
        self.runner = ScriptedRunner()
        self.ended = Ended()
        self.live = LiveCalls(state / "calls-live.jsonl", self.faults)
        self.history = CallHistory(state / "calls-history.jsonl", 30, 1000, self.faults)
        self.queue = CallQueue(self.live, QueueSettings(max_concurrent=1, max_pending=100),
                               self.runner, can_dial=lambda _: True, on_finished=self.ended,
                               history=self.history, legacy_db=state / "calls.json")
        self.queue.start()

    def submit(self, call_id: str = "") -> CallRecord:
        record = CallRecord(call_id=call_id, extension="1001", dial_uri="sip:1001@x",
                            message="hello", seq=0)
        return self.queue.submit(record)[0]

    def close(self) -> None:
        self.queue.stop(WAIT)
        self.live.close()
        self.history.close()


@pytest.fixture
def queues(tmp_path: Path) -> Iterator[Callable[..., Queue]]:
    made: list[Queue] = []

    def make(state: Path | None = None, faults: StorageFaults | None = None) -> Queue:
        made.append(Queue(state or tmp_path / "state", faults))
        return made[-1]

    yield make
    for queue in made:
        queue.close()


def test_the_worker_survives_a_crashing_call_and_a_broken_on_finished(queues) -> None:
    q = queues()
    q.ended.fail = True

    def crash(record, update):
        raise RuntimeError("bug in one call")

    q.runner.steps["bad"] = crash
    q.submit("bad")
    q.submit("good")
    ended = q.ended.wait(2)
    assert [(r.call_id, r.status) for r in ended] == [("bad", "failed"), ("good", "completed")]
    assert "internal error" in ended[0].error
    assert q.queue.status()["total_processed"] == 2


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_ended_calls_move_to_the_history_and_survive_a_restart(queues, tmp_path: Path) -> None:
    q = queues()
    first = q.submit()
    q.ended.wait(1)
    q.runner.release.clear()  # the next call stays in progress
    q.runner.in_progress.clear()
    q.submit("second")
    q.submit("third")
    assert q.runner.in_progress.wait(WAIT)
    q.runner.kill()
    q.close()
    # The journal holds only live calls; the ended one is a line of the history.
    assert {d["call_id"] for d in LiveCalls(q.state / "calls-live.jsonl").load()} == \
        {"second", "third"}
    assert first.call_id in (q.state / "calls-history.jsonl").read_text()

    q2 = queues(q.state)
    ended = q2.ended.wait(2)  # "second" was interrupted; "third" is placed
    assert [(r.call_id, r.status) for r in ended] == [("second", "failed"),
                                                      ("third", "completed")]
    assert q2.queue.get(first.call_id).status == COMPLETED
    assert [r.call_id for r in q2.queue.recent(10)] == ["third", "second", first.call_id]
    assert q2.queue.status()["total_processed"] == 3
    with pytest.raises(DuplicateCallId):  # ids of ended calls stay taken
        q2.submit(first.call_id)


def test_old_calls_json_with_every_call_is_migrated(queues, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Store(state / "calls.json") as store:
        for n in range(1, 6):
            store.insert(TABLE, CallRecord(f"old-{n}", "1001", "sip:1001@x", "m", seq=n,
                                           status=COMPLETED).to_document())
        store.insert(TABLE, CallRecord("waiting", "1001", "sip:1001@x", "m", seq=6,
                                       status=QUEUED).to_document())
    q = queues(state)
    assert q.ended.wait(1)[0].call_id == "waiting"
    assert q.queue.status()["total_processed"] == 6
    assert [r.call_id for r in q.queue.recent(3)] == ["waiting", "old-5", "old-4"]
    assert not (state / "calls.json").exists()
    assert (state / "calls.json.migrated").exists()  # kept aside, never read again


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_damaged_journal_recovers_queued_calls_from_its_copy(
    queues, tmp_path: Path
) -> None:
    q = queues()
    q.runner.release.clear()
    ids = [q.submit().call_id for _ in range(3)]
    assert q.runner.in_progress.wait(WAIT)
    q.runner.kill()
    q.close()
    calls = q.state / "calls-live.jsonl"
    raw = calls.read_bytes()
    calls.write_bytes(raw[: len(raw) // 3])  # cut short in the middle of a line

    q2 = queues(q.state)
    ended = q2.ended.wait(3)
    # The first was in progress: failed by the restart; the other two are placed.
    assert [r.call_id for r in ended] == ids
    assert [r.status for r in ended] == ["failed", "completed", "completed"]


def test_a_storage_error_refuses_new_calls_and_keeps_running_ones(
    queues, small_disk: SmallDisk
) -> None:
    faults = StorageFaults(retry_seconds=0.05)
    q = queues(small_disk.path / "state", faults)
    q.runner.release.clear()
    running = q.submit()
    small_disk.fill()
    accepted = []  # a line may still fit in the journal's last page; then no more
    with pytest.raises(StorageError, match="is full"):
        for n in range(100):
            accepted.append(q.submit(f"fits-{n}").call_id)
    assert q.queue.get(f"fits-{len(accepted)}") is None  # the refused one left no trace
    q.runner.release.set()
    ended = q.ended.wait(1)[0]  # its end cannot be written: kept in memory
    assert ended.status == COMPLETED and q.queue.get(running.call_id).status == COMPLETED
    assert not q.history.contains(running.call_id)
    assert faults.problems()

    faults.on_retry(q.queue.retry_unsaved)
    faults.start()
    try:
        small_disk.free()
        after = q.submit("after")  # a write that works clears the way at once
        q.ended.wait(2 + len(accepted))
        deadline = threading.Event()
        every = [running.call_id, *accepted, after.call_id]
        for _ in range(100):  # bounded: the retry loop runs every 0.05 s
            if all(map(q.history.contains, every)) and not faults.problems():
                break
            deadline.wait(0.05)
        assert [c for c in every if not q.history.contains(c)] == []  # none was lost
        assert faults.problems() == []
    finally:
        faults.stop()


EMFILE_CHILD = r"""
import json, os, resource, sys, threading
from pathlib import Path
from sipassist.calls.history import CallHistory
from sipassist.calls.live import LiveCalls
from sipassist.calls.model import CallRecord
from sipassist.calls.queue import CallQueue
from sipassist.config import QueueSettings
from sipassist.faults import StorageError, StorageFaults

state = Path(sys.argv[1])
faults = StorageFaults()
queue = CallQueue(LiveCalls(state / "calls-live.jsonl", faults), QueueSettings(),
                  None, threading.Event().wait, lambda record: None,
                  history=CallHistory(state / "calls-history.jsonl", 30, 1000, faults))
queue.start()
call = lambda call_id: CallRecord(call_id, "1001", "sip:1001@x", "m", 0)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
hogs = []
try:
    for _ in range(100):  # bounded: the limit is 64
        hogs.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
result = {}
try:
    queue.submit(call("starved"))
    result["starved"] = "accepted"
except StorageError as exc:
    result["starved"] = str(exc)
result["problems"] = faults.problems()
for fd in hogs:
    os.close(fd)
queue.submit(call("fed"))
result["after"] = faults.problems()
print(json.dumps(result))
"""


def test_out_of_file_descriptors_refuses_with_the_fix_then_resumes(tmp_path: Path) -> None:
    """In a child process, so the lowered descriptor limit cannot touch the test run."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", EMFILE_CHILD, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "out of file descriptors" in result["starved"] and "Fix:" in result["starved"]
    assert result["problems"] == [result["starved"]]
    assert result["after"] == []
    live = LiveCalls(tmp_path / "calls-live.jsonl").load()
    assert [d["call_id"] for d in live] == ["fed"]  # the refused call left no trace
