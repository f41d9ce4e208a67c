"""Storage faults against the real daemon: a state directory that goes read-only, then full,
then usable again; damaged state files at start; the daemon killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED, CALL_INCOMING

from .conftest import PortBlocks, stop_process
from .test_appliance import alive, find_process, sipassist_script, write_daemon_config
from .tmpfs import SmallDisk, small_disk  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.telephony, pytest.mark.models]


def wait_until(predicate, timeout: float, what: str, step: float = 0.2):
    """Poll `predicate` over HTTP (no event crosses the API) until it holds; bounded."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        pause.wait(step)


def history_ids(state: Path) -> list[str]:
    path = state / "calls-history.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line)["call_id"] for line in lines if '"call_id"' in line]


def test_read_only_then_full_then_writable_again(small_disk: SmallDisk, start_daemon,
                                                 manual_phone, webhook) -> None:
    state = small_disk.path / "state"
    daemon = start_daemon(manual_phone, paths={"state_dir": str(state)})
    daemon.daemon.faults.retry_seconds = 0.2
    call = {"message": "Storage test.", "extension": "phone", "callback_url": webhook.url}

    status, first = daemon.request("POST", "/call", call)
    assert status == 200
    accepted = [first["call_id"]]
    manual_phone.wait_event(CALL_INCOMING)

    # Read-only while the call rings: new calls are refused with the fix, health says why.
    small_disk.read_only()
    status, body = daemon.request("POST", "/call", call)
    assert status == 503, body
    assert "not writable" in body["detail"] and "Fix:" in body["detail"]
    assert str(state) in body["detail"]
    status, health = daemon.request("GET", "/health")
    assert health["status"] == "degraded"
    assert health["sip_registered"] is True and "active_calls" in health
    assert any("not writable" in p for p in health["problems"]), health

    # The ringing call goes on; its end cannot be written, so it is kept in memory.
    manual_phone.command("accept")
    manual_phone.wait_event(CALL_CLOSED, timeout=60)
    assert webhook.wait(1)[0]["status"] == "completed"  # delivered from memory, too
    assert daemon.request("GET", f"/call/{first['call_id']}")[1]["status"] == "completed"
    assert first["call_id"] not in history_ids(state)

    # Writable but full; the phone answers by itself from now on.
    manual_phone.command("answermode", "auto")
    small_disk.writable()
    small_disk.fill()
    refused = None
    for n in range(50):  # a small call may still fit in the journal's last page
        status, body = daemon.request("POST", "/call", call | {"call_id": f"full-{n}"})
        if status != 200:
            refused = body
            break
        accepted.append(body["call_id"])
    assert status == 503 and "is full" in refused["detail"], refused
    assert daemon.request("GET", "/health")[1]["status"] == "degraded"
    assert daemon.request("GET", f"/call/full-{n}")[0] == 404  # nothing half-accepted

    # Room again: work resumes by itself, and nothing accepted was lost.
    small_disk.free()
    wait_until(lambda: daemon.request("GET", "/health")[1]["status"] == "healthy", 30,
               "healthy once the disk has room")
    status, last = daemon.request("POST", "/call", call)
    assert status == 200
    accepted.append(last["call_id"])
    payloads = webhook.wait(len(accepted), timeout=120)
    assert sorted(p["call_id"] for p in payloads) == sorted(accepted)
    assert all(p["status"] == "completed" for p in payloads), payloads
    wait_until(lambda: set(accepted) <= set(history_ids(state)), 30, "every call on disk")
    assert sorted(history_ids(state)) == sorted(accepted)  # each once
    assert daemon.request("GET", "/queue")[1]["total_processed"] == len(accepted)
    assert any(t.name == "call-worker-0" for t in threading.enumerate())


def test_damaged_state_files_at_start_are_recovered(start_daemon, tmp_path: Path,
                                                    manual_phone, webhook) -> None:
    """Stopped with calls waiting; the journal and schedules.json are then cut short (a
    failing card): the next start recovers both from the copies beside them."""
    first = start_daemon(manual_phone)
    call = {"message": "Recovered call.", "extension": "phone", "callback_url": webhook.url}
    ringing = first.request("POST", "/call", call)[1]
    waiting = [first.request("POST", "/call", call)[1]["call_id"] for _ in range(2)]
    status, schedule = first.request("POST", "/schedule", {
        "extension": "phone", "message": "Later.", "delay_seconds": 3600})
    assert status == 200, schedule
    manual_phone.wait_event(CALL_INCOMING)
    first.stop()
    assert webhook.wait(1)[0]["call_id"] == ringing["call_id"]  # failed by the stop

    state = tmp_path / "state"
    for name in ("calls-live.jsonl", "schedules.json"):
        raw = (state / name).read_bytes()
        (state / name).write_bytes(raw[: len(raw) // 2])

    manual_phone.command("answermode", "auto")
    second = start_daemon(manual_phone, state=tmp_path)
    payloads = webhook.wait(3, timeout=120)
    assert [p["call_id"] for p in payloads[1:]] == waiting
    assert all(p["status"] == "completed" for p in payloads[1:]), payloads
    status, kept = second.request("GET", f"/schedule/{schedule['schedule_id']}")
    assert status == 200 and kept["status"] == "pending", kept
    assert list(state.glob("schedules.json.corrupt-*"))  # the damaged bytes kept aside


def test_sigkill_and_restart_keeps_queue_and_schedules_without_duplicates(
    tmp_path: Path, ports: PortBlocks, models_dir: Path, manual_phone, webhook
) -> None:
    config, layout = write_daemon_config(tmp_path, ports, models_dir)
    with open(config, "a") as file:
        file.write('\n[llm]\nbackend = "none"\n\n[webhooks]\nbackoff_seconds = 0.2\n'
                   'backoff_max_seconds = 1.0\n')
    url = f"http://127.0.0.1:{layout['api_port']}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "STATE_DIRECTORY", "RUNTIME_DIRECTORY")}

    def request(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def healthy() -> bool:
        try:
            return request("GET", "/health")[1].get("status") == "healthy"
        except OSError:
            return False

    def start(log_name: str) -> subprocess.Popen:
        log = open(tmp_path / log_name, "wb")
        process = subprocess.Popen([str(sipassist_script()), "run", "--config", str(config)],
                                   env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return process

    extension = manual_phone.uri
    daemon = start("first.log")
    children: list[int] = []
    try:
        wait_until(healthy, 180, "the daemon is up")
        ringing = request("POST", "/call", {"message": "Cut off.", "extension": extension,
                                            "callback_url": webhook.url})[1]
        waiting = [request("POST", "/call", {"message": f"Queued {n}.", "extension": extension,
                                             "callback_url": webhook.url})[1]["call_id"]
                   for n in range(2)]
        status, schedule = request("POST", "/schedule", {
            "extension": extension, "message": "Tomorrow.", "delay_seconds": 86400})
        assert status == 200
        manual_phone.wait_event(CALL_INCOMING)
        children = [find_process("baresip", "-f", str(layout["runtime_dir"] / "baresip")),
                    find_process("jackd", "-n", layout["jack_server"])]

        daemon.kill()  # SIGKILL: no stop, no last write
        daemon.wait(10)
        for pid in children:  # orphans hold the ports (the supervision work removes them)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        manual_phone.ctrl.command("hangup")  # it would ring on: its caller is gone
        manual_phone.command("answermode", "auto")

        daemon = start("second.log")
        wait_until(healthy, 180, "the daemon is up again")
        payloads = webhook.wait(3, timeout=120)
        by_id = {p["call_id"]: p for p in payloads}
        assert by_id[ringing["call_id"]]["status"] == "failed"
        assert [by_id[c]["status"] for c in waiting] == ["completed", "completed"]
        status, kept = request("GET", f"/schedule/{schedule['schedule_id']}")
        assert status == 200 and kept["status"] == "pending"
        wait_until(lambda: request("GET", "/queue")[1]["total_processed"] == 3, 30,
                   "three calls processed")
        queue = request("GET", "/queue")[1]
        assert queue["pending"] == 0 and queue["active"] == 0
        # Each call was placed once and is on disk once.
        assert sorted(history_ids(tmp_path / "state")) == sorted([ringing["call_id"], *waiting])
        for _ in waiting:  # answered by itself: CALL_ESTABLISHED, once per call
            manual_phone.wait_event(CALL_ESTABLISHED)
        with pytest.raises(AssertionError):
            manual_phone.wait_event(CALL_ESTABLISHED, timeout=2)  # no third call
        assert request("POST", "/call", {"message": "x", "extension": extension,
                                         "call_id": waiting[0]})[0] == 409
    finally:
        stop_process(daemon, 30)
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for name in ("first.log", "second.log"):
            if (tmp_path / name).exists():
                print(name, (tmp_path / name).read_text(errors="replace")[-2000:])

