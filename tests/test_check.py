"""`sipassist check`: real jackd, baresip, ports and files; one line per check, the fix on FAIL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .conftest import PortBlocks, free_tcp_port

pytestmark = pytest.mark.telephony


def _toml_value(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value).lower() \
        if isinstance(value, bool) else str(value)


def write_config(path: Path, sections: dict[str, dict[str, object]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def good_sections(tmp: Path, ports: PortBlocks, models_dir: Path) -> dict[str, dict]:
    """Loopback ports from a free block and private dirs, like conftest's daemon_settings."""
    base = ports.take()
    return {
        "sip": {"listen": f"127.0.0.1:{base}", "interface": "127.0.0.1",
                "dns_server": "127.0.0.1:53", "ctrl_port": base + 5,
                "rtp_ports": f"{base + 10}-{base + 99}"},
        "api": {"host": "127.0.0.1", "port": free_tcp_port()},
        "audio": {"jack_server": f"sipassist-test-{base}"},
        "paths": {"state_dir": str(tmp / "state"), "runtime_dir": str(tmp / "run"),
                  "models_dir": str(models_dir)},
    }


def run_check(config: Path | None, timeout: float = 90) -> tuple[int, list[str], float]:
    argv = [sys.executable, "-m", "sipassist", "check"]
    if config is not None:
        argv += ["--config", str(config)]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - started
    lines = done.stdout.splitlines()
    print(done.stdout, done.stderr, sep="\n")
    return done.returncode, lines, elapsed


def line_for(lines: list[str], name: str) -> str:
    found = [line for line in lines if line.split(":", 1)[0].split(None, 1)[-1] == name]
    assert found, f"no {name!r} line in {lines}"
    return found[0]


def children_of_check_left() -> list[str]:
    """jackd servers a check started (sipassist-check-<pid>) that are still running."""
    left = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "sipassist-check-" in cmdline and "jackd" in cmdline:
            left.append(cmdline)
    return left


@pytest.fixture
def sections(tmp_path: Path, ports: PortBlocks, models_dir: Path) -> dict[str, dict]:
    return good_sections(tmp_path, ports, models_dir)


def test_good_config_passes(tmp_path: Path, sections) -> None:
    code, lines, elapsed = run_check(write_config(tmp_path / "good.toml", sections))
    assert code == 0, lines
    results = [line for line in lines if line.split(None, 1)[0] in ("OK", "WARN", "FAIL")]
    names = [line.split(":", 1)[0].split(None, 1)[1] for line in results]
    for name in ("config", "state dir", "tts voice", "asr model", "embedding model", "jackd",
                 "baresip", "sip registration", "station port", "api port", "sip ports"):
        assert name in names, f"no {name!r} check in {lines}"
    assert all(line.startswith("OK ") for line in results), results
    assert "stopped again" in line_for(lines, "jackd")
    assert "answers on ctrl_tcp" in line_for(lines, "baresip")
    assert lines[-1].startswith("all checks passed")
    assert elapsed < 30, f"check took {elapsed:.1f} s"
    assert not children_of_check_left()
    # A check writes nothing: no state dir, no assembled model where none was.
    assert not (tmp_path / "state").exists()


def test_missing_station_port_fails_with_the_fix(tmp_path: Path, sections) -> None:
    sections["station"] = {"protocol": "jsonl", "port": "/dev/ttySIPASSIST-NOT-THERE"}
    code, lines, _ = run_check(write_config(tmp_path / "station.toml", sections))
    assert code == 1
    line = line_for(lines, "station port")
    assert line.startswith("FAIL")
    assert "/dev/ttySIPASSIST-NOT-THERE does not exist" in line
    assert "Fix:" in line and "[station] port" in line and 'protocol = "none"' in line
    assert "failed" in lines[-1]


def test_station_on_a_pty_is_ok(tmp_path: Path, sections) -> None:
    master, slave = os.openpty()
    try:
        sections["station"] = {"protocol": "jsonl", "port": os.ttyname(slave)}
        code, lines, _ = run_check(write_config(tmp_path / "pty.toml", sections))
    finally:
        os.close(master)
        os.close(slave)
    assert code == 0, lines
    assert line_for(lines, "station port").startswith("OK")


def test_occupied_api_port_fails_with_the_fix(tmp_path: Path, sections) -> None:
    with socket.socket() as squatter:  # listens, but is not a sipassist
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        sections["api"]["port"] = squatter.getsockname()[1]
        code, lines, _ = run_check(write_config(tmp_path / "busy.toml", sections))
    assert code == 1
    line = line_for(lines, "api port")
    assert line.startswith("FAIL")
    assert "in use by another program" in line
    assert "Fix:" in line and "[api] port" in line and "ss -lpn" in line


@pytest.mark.parametrize("broken", ["models_dir", "tts_voice"])
def test_bad_models_path_fails_with_the_fix(tmp_path: Path, sections, broken: str) -> None:
    if broken == "models_dir":
        # A file where the models directory should be: Whisper base cannot be assembled there
        # (true even for root, unlike a permission problem).
        blocker = tmp_path / "blocker"
        blocker.write_text("not a directory")
        sections["paths"]["models_dir"] = str(blocker / "models")
        name, words = "asr model", ["cannot be created", "Fix:", "[paths] models_dir"]
    else:
        sections["models"] = {"tts_voice": str(tmp_path / "nowhere" / "voice.onnx")}
        name, words = "tts voice", ["no such file", "Set models.tts_voice", "Fix:"]
    code, lines, _ = run_check(write_config(tmp_path / "models.toml", sections))
    assert code == 1
    line = line_for(lines, name)
    assert line.startswith("FAIL")
    for word in words:
        assert word in line, line


def test_config_error_fails_with_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[api]\nport = 'eighty'\n")
    code, lines, _ = run_check(config)
    assert code == 1
    line = line_for(lines, "config")
    assert line.startswith("FAIL") and "api.port" in line and "whole number" in line
    assert "Fix:" in line
    code, lines, _ = run_check(tmp_path / "absent.toml")
    assert code == 1
    assert "cannot read" in line_for(lines, "config") and "--config" in line_for(lines, "config")


class _FakeDaemon(BaseHTTPRequestHandler):
    """Answers GET /health the way a running sipassist does."""

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        body = json.dumps({"status": "healthy", "sip_registered": True,
                           "active_calls": 0}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_running_daemon_is_reported_not_failed(tmp_path: Path, sections) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeDaemon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sections["api"]["port"] = server.server_address[1]
        code, lines, _ = run_check(write_config(tmp_path / "running.toml", sections))
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, lines
    assert "already running" in line_for(lines, "api port")
    assert line_for(lines, "api port").startswith("OK")


def test_unreachable_registrar_is_a_bounded_warning(tmp_path: Path, sections) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    sections["sip.registrar"] = {"domain": f"127.0.0.1:{dead_port}", "username": "1050",
                                 "password": "secret"}
    code, lines, elapsed = run_check(write_config(tmp_path / "reg.toml", sections))
    assert code == 0, lines
    line = line_for(lines, "sip registration")
    assert line.startswith("WARN") and f"127.0.0.1:{dead_port}" in line
    assert elapsed < 40, f"check took {elapsed:.1f} s"
