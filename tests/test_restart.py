"""The daemon killed with SIGKILL (foreground mode, containers), then started again on the same
config: no manual step. And a start that cannot work says why, once, without a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import jack
import pytest

from sipassist.telephony import baresip
from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED

from .conftest import PortBlocks, stop_process
from .test_appliance import alive, find_process, health, sipassist_script, write_daemon_config
from .test_supervision import wait_until

pytestmark = [pytest.mark.telephony, pytest.mark.models]

START_BOUND = 180  # loading the models on a loaded CI machine


def daemon_config(tmp: Path, ports: PortBlocks, models_dir: Path,
                  phone_port: int = 0) -> tuple[Path, dict]:
    config, layout = write_daemon_config(tmp, ports, models_dir)
    text = config.read_text()
    if phone_port:  # a bare extension is dialled at the test phone
        text = text.replace("[sip]\n", f'[sip]\ndial_domain = "127.0.0.1:{phone_port}"\n', 1)
    config.write_text(text + '\n[llm]\nbackend = "none"\n')  # quicker starts: no LLM here
    return config, layout


def run_daemon(config: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM", "STATE_DIRECTORY",
                        "RUNTIME_DIRECTORY")}
    with open(log, "ab") as out:
        return subprocess.Popen([str(sipassist_script()), "run", "--config", str(config)],
                                env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(url: str, daemon: subprocess.Popen) -> float:
    started = time.monotonic()
    while time.monotonic() - started < START_BOUND:
        assert daemon.poll() is None, "the daemon exited"
        body = health(url)
        if body and body["status"] == "healthy":
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"not healthy within {START_BOUND} s")


def jack_server_up(name: str) -> bool:
    try:
        jack.Client("probe", no_start_server=True, servername=name).close()
    except jack.JackOpenError:
        return False
    return True


def plant_leftovers(layout: dict, env: dict, planted: list[subprocess.Popen]) -> None:
    """jackd and baresip of this config as an earlier run (one without PDEATHSIG) left them;
    appended to `planted` as they start, so that the caller stops them whatever happens."""
    run = layout["runtime_dir"]
    said = run / "planted-jackd.log"
    with open(said, "wb") as out:
        jackd = subprocess.Popen(["jackd", "--no-realtime", "-n", layout["jack_server"], "-d",
                                  "dummy", "-r", "16000", "-p", "320"],
                                 env={**env, "JACK_NO_AUDIO_RESERVATION": "1"},
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    planted.append(jackd)
    assert wait_until(lambda: jack_server_up(layout["jack_server"]), 10, step=0.1), \
        said.read_text(errors="replace")
    bare = subprocess.Popen(baresip.argv(run / "baresip"),
                            env={**env, "JACK_DEFAULT_SERVER": layout["jack_server"]},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    planted.append(bare)
    (run / "jackd.pid").write_text(f"{jackd.pid}\n")
    (run / "baresip.pid").write_text(f"{bare.pid}\n")


def place_call(url: str) -> None:
    body = json.dumps({"message": "A long message. " * 30, "extension": "phone"}).encode()
    request = urllib.request.Request(url + "/call", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_restart_after_sigkill(tmp_path: Path, ports: PortBlocks, models_dir: Path,
                               phone) -> None:
    config, layout = daemon_config(tmp_path, ports, models_dir, phone.sip_port)
    url = f"http://127.0.0.1:{layout['api_port']}"
    log = tmp_path / "daemon.log"
    planted: list[subprocess.Popen] = []
    children: list[int] = []
    daemon = run_daemon(config, log)
    second = None
    try:
        wait_healthy(url, daemon)
        children = [find_process("jackd", "-n", layout["jack_server"]),
                    find_process("baresip", "-f", str(layout["runtime_dir"] / "baresip"))]
        place_call(url)
        phone.wait_event(CALL_ESTABLISHED, timeout=60)
        daemon.kill()
        daemon.wait(10)
        # PR_SET_PDEATHSIG: jackd and baresip go with the daemon, baresip with a BYE.
        assert wait_until(lambda: not any(alive(pid) for pid in children), 10), \
            "jackd or baresip outlived the daemon's SIGKILL"
        # Until init has reaped it, a dead jackd still owns its name ("already active").
        assert wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children),
                          30, step=0.1)
        phone.wait_event(CALL_CLOSED, timeout=10)

        # Leftovers as an earlier version (or a child that ignored the signal) left them,
        # holding the SIP and ctrl ports: the next start stops them, with no manual step.
        plant_leftovers(layout, dict(os.environ), planted)
        started = time.monotonic()
        second = run_daemon(config, log)
        took = wait_healthy(url, second)
        print(f"restart after SIGKILL (with leftovers): healthy after {took:.1f} s "
              f"(total {time.monotonic() - started:.1f} s)")
        assert all(proc.poll() is not None for proc in planted), "a leftover still runs"
        text = log.read_text(errors="replace")
        assert text.count("left running by an earlier run of this config") == 2, text[-3000:]
        assert "WARNING" in text.split("left running by an earlier run")[0].splitlines()[-1]
    finally:
        for proc in (second, daemon):
            if proc is not None:
                stop_process(proc, 30)
        for proc in planted:
            stop_process(proc, 5)  # SIGTERM first: jackd then leaves JACK's server registry
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        print(log.read_text(errors="replace")[-3000:])


def test_start_fails_clearly_when_jackd_cannot_start(tmp_path: Path, ports: PortBlocks,
                                                    models_dir: Path) -> None:
    """A JACK server of the same name that is not ours (no pid file): a clear ERROR, exit 1."""
    config, layout = daemon_config(tmp_path, ports, models_dir)
    foreign = subprocess.Popen(["jackd", "--no-realtime", "-n", layout["jack_server"], "-d",
                                "dummy", "-r", "16000", "-p", "640"],
                               env={**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "daemon.log"
    try:
        assert wait_until(lambda: jack_server_up(layout["jack_server"]), 10, step=0.1)
        daemon = run_daemon(config, log)
        try:
            assert daemon.wait(START_BOUND) == 1
        finally:
            stop_process(daemon, 10)
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]
        errors = [line for line in text.splitlines() if "ERROR" in line and "cannot start" in line]
        assert errors and "already running" in errors[0], text[-3000:]
        assert foreign.poll() is None, "a JACK server that is not ours was stopped"
    finally:
        stop_process(foreign, 5)
