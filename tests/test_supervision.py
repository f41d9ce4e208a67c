"""Process supervision with real child processes: death with the parent, leftovers of an earlier
run, restarts without backoff unless a child crash-loops, and the output pump."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sipassist.telephony.process import MAX_LINE, SupervisedProcess, cmdline_of

from .test_appliance import alive


def wait_until(predicate, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_child_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a supervisor killed with SIGKILL takes its child along."""
    script = textwrap.dedent(f"""
        import sys, threading
        from pathlib import Path
        from sipassist.telephony.process import SupervisedProcess
        started = threading.Event()
        child = SupervisedProcess("sleeper", ["sleep", "300"],
                                  on_started=lambda pid: started.set(),
                                  pid_file=Path({str(tmp_path / "sleeper.pid")!r}))
        child.start()
        started.wait(10)
        print(child.pid, flush=True)
        threading.Event().wait(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    child = None
    try:
        child = int(parent.stdout.readline())
        # Once sleep runs, setpriv has set the death signal (it execs right after).
        assert wait_until(lambda: cmdline_of(child) == ["sleep", "300"], 10)
        assert (tmp_path / "sleeper.pid").read_text().strip() == str(child)
        parent.kill()
        parent.wait(10)
        assert wait_until(lambda: not alive(child), 5), "the child outlived its killed parent"
    finally:
        parent.kill()
        parent.wait(10)
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)


def test_leftover_of_the_same_config_is_stopped(tmp_path: Path, caplog) -> None:
    argv = ["sleep", "301"]
    pid_file = tmp_path / "sleeper.pid"
    leftover = subprocess.Popen(argv)  # what an earlier, killed run left behind
    stranger = subprocess.Popen(["sleep", "302"])  # a different program reusing a stale pid
    try:
        pid_file.write_text(f"{leftover.pid}\n")
        caplog.set_level(logging.WARNING, "sipassist.telephony.process")
        SupervisedProcess("sleeper", argv, pid_file=pid_file).stop_leftovers()
        assert leftover.wait(5) == -signal.SIGTERM
        assert any("left running by an earlier run" in r.getMessage() and
                   r.levelno == logging.WARNING for r in caplog.records), caplog.text
        assert not pid_file.exists()

        pid_file.write_text(f"{stranger.pid}\n")
        SupervisedProcess("sleeper", argv, pid_file=pid_file).stop_leftovers()
        assert stranger.poll() is None, "a process that is not ours was stopped"
    finally:
        for proc in (leftover, stranger):
            proc.kill()
            proc.wait()


def test_healthy_child_is_restarted_at_once_every_time() -> None:
    started: list[tuple[float, int]] = []
    child = SupervisedProcess("sleeper", ["sleep", "300"],
                              on_started=lambda pid: started.append((time.monotonic(), pid)))
    child.start()
    try:
        gaps = []
        for kills in range(1, 6):
            assert wait_until(lambda: len(started) == kills and child.pid, 5)
            child.mark_healthy()  # as the switchboard does once the child answers
            killed_at = time.monotonic()
            child.kill()
            assert wait_until(lambda: len(started) == kills + 1, 5)
            gaps.append(started[-1][0] - killed_at)
        assert child.restarts == 5
        # Not 0.5, 1, 2, 4, 8 s: a child that worked is no crash loop.
        assert max(gaps) < 1.0, gaps
    finally:
        child.stop()


def test_crash_loop_backs_off_and_deliberate_restarts_do_not_count(caplog) -> None:
    caplog.set_level(logging.INFO)
    looping = SupervisedProcess("crasher", ["sh", "-c", "echo banner; echo \"'x' server "
                                            "already active\"; echo more; exit 3"], backoff=0.2)
    looping.start()
    time.sleep(1.6)  # 0.2 + 0.4 + 0.8 s of backoff fit: about four starts, not sixteen
    looping.stop()
    assert 2 <= looping.restarts <= 5, looping.restarts
    # The cause is said at ERROR, not only in the child's own INFO lines.
    assert looping.failure() == "crasher exited with code 3: 'x' server already active"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and all("already active" in message for message in errors), errors

    started: list[int] = []
    child = SupervisedProcess("sleeper", ["sleep", "300"], on_started=started.append)
    child.start()
    try:
        for count in range(1, 4):
            assert wait_until(lambda: len(started) == count and child.pid, 5)
            child.restart()
        assert wait_until(lambda: len(started) == 4, 5)
        assert child.restarts == 0
    finally:
        child.stop()


def test_output_pump_drops_the_status_line_and_bounds_lines(caplog) -> None:
    status = "".join(f"[0:00:{n:02d}] audio=64000/64000 (bit/s)   \r" for n in range(60))
    script = (f"printf '%s' '{status}'; echo 'call closed'; "
              f"head -c {3 * MAX_LINE} /dev/zero | tr '\\0' x; echo; echo last")
    caplog.set_level(logging.INFO, "sipassist.pump")
    done = []
    child = SupervisedProcess("pump", ["sh", "-c", script], on_exited=done.append)
    child.start()
    try:
        assert wait_until(lambda: done, 5)
    finally:
        child.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "sipassist.pump"]
    assert "call closed" in lines and "last" in lines, lines
    assert not any("audio=" in line for line in lines), lines
    assert all(len(line) <= MAX_LINE + 1 for line in lines), [len(line) for line in lines]
