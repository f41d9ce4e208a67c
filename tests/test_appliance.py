"""The appliance around the daemon: the systemd unit, sd_notify and the watchdog, journal fields.

No systemd runs as PID 1 here, so the unit is checked with `systemd-analyze verify` and the
notify protocol with a datagram socket this test owns, as systemd would hand one to the daemon.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from sipassist import logs

from .conftest import PortBlocks, free_tcp_port, loopback_sip_toml, stop_process

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "sipassist.service"


# -- the unit ---------------------------------------------------------------------------------

def sipassist_script() -> Path:
    """The `sipassist` console script of the Python running the tests (it exists in CI)."""
    script = Path(sys.executable).parent / "sipassist"
    if script.exists():
        return script
    found = shutil.which("sipassist")
    assert found, "the sipassist console script is not installed (pip install -e .)"
    return Path(found)


def test_unit_verifies_cleanly(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd; "
                    "./install.sh --dev installs it)")
    text = UNIT.read_text()
    assert "ExecStart=/opt/sipassist/venv/bin/sipassist run --config "\
           "/etc/sipassist/sipassist.toml" in text
    # /opt/sipassist/venv does not exist on a test machine: point ExecStart at a real script.
    unit = tmp_path / "sipassist.service"
    unit.write_text(text.replace("ExecStart=/opt/sipassist/venv/bin/sipassist",
                                 f"ExecStart={sipassist_script()}"))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    # An unknown or misspelt key only warns (exit 0), so stderr must be empty as well.
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


def test_unit_matches_what_install_sh_writes() -> None:
    unit = UNIT.read_text()
    install = (REPO / "install.sh").read_text()
    for setting in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=sipassist",
                    "SupplementaryGroups=dialout audio", "StateDirectory=sipassist",
                    "RuntimeDirectory=sipassist", "ConfigurationDirectory=sipassist",
                    "KillMode=mixed", "ReadWritePaths=/dev/shm"):
        assert setting in unit, setting
    for words in ("prefix=/opt/sipassist", "etc_dir=/etc/sipassist",
                  "config=$etc_dir/sipassist.toml", "state_dir=/var/lib/sipassist",
                  "venv=$prefix/venv", "user=sipassist"):
        assert words in install, words
    assert "Documentation=file:/opt/sipassist/src/README.md" in unit
    # The hardening must leave the serial port and jackd's shared memory reachable.
    assert "PrivateDevices=yes" not in unit and "MemoryDenyWriteExecute" not in unit


# -- journal fields ---------------------------------------------------------------------------

def record(**extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("sipassist.calls", logging.INFO, __file__, 1, "call %s ended",
                              ("out-1",), None)
    for name, value in extra.items():
        setattr(entry, name, value)
    return entry


def test_fields_formatter_appends_structured_fields() -> None:
    formatter = logs.FieldsFormatter("%(levelname)s %(name)s: %(message)s")
    assert formatter.format(record(CALL_ID="out-1", EXTENSION="1001")) == \
        "INFO sipassist.calls: call out-1 ended [CALL_ID=out-1 EXTENSION=1001]"
    assert formatter.format(record(CALL_ID="out-2")) == \
        "INFO sipassist.calls: call out-1 ended [CALL_ID=out-2]"
    assert formatter.format(record(CALL_ID="", EXTENSION=None)) == \
        "INFO sipassist.calls: call out-1 ended"
    assert formatter.format(record(SCHEDULE_ID="sch-1", TOOL="WEATHER")) == \
        "INFO sipassist.calls: call out-1 ended [SCHEDULE_ID=sch-1 TOOL=WEATHER]"


def test_configure_uses_stderr_lines_outside_the_journal(monkeypatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure()
        assert isinstance(root.handlers[0].formatter, logs.FieldsFormatter)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_journal_handler_sends_call_fields(monkeypatch) -> None:
    pytest.importorskip("systemd.journal")
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    handler = logs.journal_handler()
    assert handler is not None
    sent: list[tuple[str, dict]] = []
    handler.send = lambda MESSAGE, **fields: sent.append((MESSAGE, fields))  # noqa: N803
    handler.emit(record(CALL_ID="out-7", EXTENSION="1001"))
    message, fields = sent[0]
    assert message == "call out-1 ended"
    assert fields["CALL_ID"] == "out-7" and fields["EXTENSION"] == "1001"
    assert fields["SYSLOG_IDENTIFIER"] == "sipassist"


# -- sd_notify and the watchdog ----------------------------------------------------------------

class NotifySocket:
    """The datagram socket systemd would listen on, with the unit's NotifyAccess=main.

    Like systemd it reads the sender's PID from SCM_CREDENTIALS and takes messages from the
    main PID only: children inherit NOTIFY_SOCKET, and jackd (built with libsystemd) sends a
    READY=1 of its own as soon as its server runs. Those land in `foreign`.
    """

    def __init__(self, on_message) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sa-notify-"))  # short: sun_path is 108 bytes
        self.path = self.dir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.main_pid: int | None = None
        self.messages: list[tuple[float, str]] = []
        self.foreign: list[tuple[int, str]] = []
        self._on_message = on_message
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        creds_size = socket.CMSG_SPACE(struct.calcsize("3i"))
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(4096, creds_size)
            except TimeoutError:
                continue
            except OSError:
                return
            sender = next((struct.unpack("3i", cdata[:12])[0]
                           for level, kind, cdata in ancillary
                           if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS),
                          None)
            message = data.decode(errors="replace")
            if sender is None or sender != self.main_pid:
                self.foreign.append((sender or 0, message))
                continue
            self._on_message(message)  # before anyone is told: READY is checked at once
            with self._cond:
                self.messages.append((time.monotonic(), message))
                self._cond.notify_all()

    def wait_for(self, predicate, timeout: float, since: float = 0.0) -> tuple[float, str]:
        """The first message after `since` (monotonic) for which predicate(message) holds."""
        def found():
            return next(((at, m) for at, m in self.messages if at >= since and predicate(m)),
                        None)
        with self._cond:
            hit = self._cond.wait_for(found, timeout)
        assert hit, (f"no matching sd_notify message within {timeout} s; got "
                     f"{[m for _, m in self.messages][-8:]}")
        return hit

    def after(self, since: float) -> list[str]:
        with self._cond:
            return [m for at, m in self.messages if at >= since]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def pings(message: str) -> bool:
    return "WATCHDOG=1" in message.splitlines()


def health(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


def find_process(*needles: str) -> int:
    """PID of the one process whose command line holds all `needles` (waits a little)."""
    deadline = time.monotonic() + 10
    while True:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            line = b" ".join(argv).decode(errors="replace")
            if all(needle in line for needle in needles):
                return int(proc.name)
        assert time.monotonic() < deadline, f"no process with {needles}"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def write_daemon_config(tmp: Path, ports: PortBlocks, models_dir: Path) -> tuple[Path, dict]:
    """A TOML like conftest's daemon_settings: loopback ports, private dirs and JACK server."""
    base = ports.take()
    layout = {"api_port": free_tcp_port(), "jack_server": f"sipassist-test-{base}",
              "runtime_dir": tmp / "run"}
    path = tmp / "sipassist.toml"
    path.write_text(f"""
{loopback_sip_toml(base)}
[api]
host = "127.0.0.1"
port = {layout["api_port"]}

[audio]
jack_server = "{layout["jack_server"]}"

[paths]
state_dir = "{tmp / "state"}"
runtime_dir = "{layout["runtime_dir"]}"
models_dir = "{models_dir}"
""")
    return path, layout


@pytest.mark.telephony
@pytest.mark.models
def test_sd_notify_ready_watchdog_degraded_stopping(tmp_path: Path, ports: PortBlocks,
                                                    models_dir: Path) -> None:
    config, layout = write_daemon_config(tmp_path, ports, models_dir)
    url = f"http://127.0.0.1:{layout['api_port']}"
    health_at_ready: list[dict | None] = []

    def on_message(message: str) -> None:
        if "READY=1" in message.splitlines():
            health_at_ready.append(health(url))

    notify = NotifySocket(on_message)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"}
    for name in ("WATCHDOG_PID", "JOURNAL_STREAM", "STATE_DIRECTORY", "RUNTIME_DIRECTORY"):
        env.pop(name, None)
    interval = 1.0  # WATCHDOG_USEC / 2: the daemon pings twice per watchdog period
    log = open(tmp_path / "daemon.log", "wb")
    daemon = subprocess.Popen([str(sipassist_script()), "run", "--config", str(config)],
                              env=env, stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    notify.main_pid = daemon.pid  # the daemon needs seconds before it can send anything
    children: list[int] = []
    baresip = None
    try:
        ready_at, _ = notify.wait_for(lambda m: "READY=1" in m.splitlines(), timeout=180)
        assert health_at_ready and health_at_ready[0] is not None, \
            "READY=1 came before GET /health answered"
        assert health_at_ready[0]["status"] == "healthy", health_at_ready
        assert not any(pings(m) for at, m in notify.messages if at < ready_at), \
            "a watchdog ping came before READY=1"

        first, _ = notify.wait_for(pings, timeout=10, since=ready_at)
        notify.wait_for(pings, timeout=5, since=first + 0.01)

        baresip = find_process("baresip", "-f", str(layout["runtime_dir"] / "baresip"))
        jackd = find_process("jackd", "-n", layout["jack_server"])
        children = [baresip, jackd]

        # baresip wedged: ctrl_tcp stops answering, so the pings must stop.
        os.kill(baresip, signal.SIGSTOP)
        stopped_at = time.monotonic()
        degraded_at, degraded = notify.wait_for(
            lambda m: any(line.startswith("STATUS=Degraded") for line in m.splitlines()),
            timeout=15, since=stopped_at)
        assert "reginfo" in degraded or "baresip" in degraded, degraded
        time.sleep(2 * interval + 1.5)
        silent = notify.after(degraded_at)
        assert not any(pings(m) for m in silent), f"pinged while degraded: {silent}"
        last_ping = max(at for at, m in notify.messages if pings(m))
        assert time.monotonic() - last_ping > 2 * interval

        os.kill(baresip, signal.SIGCONT)
        resumed_at = time.monotonic()
        notify.wait_for(pings, timeout=15, since=resumed_at)
        assert health(url)["status"] == "healthy"

        stop_at = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        notify.wait_for(lambda m: "STOPPING=1" in m.splitlines(), timeout=10, since=stop_at)
        assert daemon.wait(30) == 0
        assert time.monotonic() - stop_at < 30
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if alive(pid)], "jackd or baresip outlived the daemon"
    finally:
        if baresip and alive(baresip):
            os.kill(baresip, signal.SIGCONT)
        stop_process(daemon, 30)
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
        notify.close()
        print("sd_notify messages from other PIDs (ignored, as NotifyAccess=main does):",
              notify.foreign)
        print((tmp_path / "daemon.log").read_text(errors="replace")[-3000:])
