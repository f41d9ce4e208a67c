"""Shared fixtures: free loopback ports, loaded models, a running daemon, the test phone."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sipassist import config
from sipassist.daemon import Daemon

from .phone import TestPhone

MODELS_DIR_ENV = "SIPASSIST_TEST_MODELS_DIR"


# -- ports ----------------------------------------------------------------------------------

def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked `heard` runs once more after a failure (pytest-rerunfailures): Whisper
    hearing speech in a real-time call can lose a word to a dropout on a loaded machine. The
    same failure twice is a real one."""
    for item in items:
        if item.get_closest_marker("heard") is not None:
            item.add_marker(pytest.mark.flaky(reruns=1))


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class PortBlocks:
    """Blocks of 100 ports, one per SIP endpoint: SIP at +0 (TLS +1), ctrl +5, RTP +10..+99."""

    def __init__(self) -> None:
        start = 20000 + (os.getpid() % 200) * 100
        self._blocks = itertools.count(start, 100)

    def take(self) -> int:
        for base in self._blocks:
            if base > 60000:
                break
            if all(_port_free(base + offset) for offset in (0, 1, 5, 10, 11)):
                return base
        raise RuntimeError("no free port block on loopback")

    def phone(self, directory: Path, answermode: str = "auto", echo: bool = False,
              user: str = "phone", domain: str = "") -> TestPhone:
        """A test phone on its own port block (stop it when done)."""
        base = self.take()
        return TestPhone(directory, base, base + 5, f"{base + 10}-{base + 99}", answermode,
                         user=user, echo=echo, domain=domain)


@pytest.fixture(scope="session")
def ports() -> PortBlocks:
    return PortBlocks()


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loopback_sip_toml(base: int) -> str:
    """The [sip] section of a config file for a daemon on loopback, on a port block."""
    return f"""[sip]
listen = "127.0.0.1:{base}"
interface = "127.0.0.1"
dns_server = "127.0.0.1:53"
ctrl_port = {base + 5}
rtp_ports = "{base + 10}-{base + 99}"
"""


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- models ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Assembled model weights, shared by the session (or kept across runs via the env var)."""
    if os.environ.get(MODELS_DIR_ENV):
        return Path(os.environ[MODELS_DIR_ENV])
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def synthesizer(models_dir: Path):
    from sipassist.config import ModelSettings
    from sipassist.models import resolve_tts_voice
    from sipassist.voice.tts import Synthesizer

    return Synthesizer(resolve_tts_voice(ModelSettings(), models_dir), 16000)


@pytest.fixture(scope="session")
def transcriber(models_dir: Path):
    from sipassist.config import ModelSettings
    from sipassist.models import resolve_asr_model
    from sipassist.voice.asr import Transcriber

    return Transcriber(resolve_asr_model(ModelSettings(asr_model="base"), models_dir))


@pytest.fixture(scope="session")
def chat(models_dir: Path):
    """The local LLM (Qwen 0.5B); skipped where llama-cpp-python is not installed."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from sipassist.models import resolve_llm_model
    from sipassist.voice.llm import LocalChat

    return LocalChat(resolve_llm_model("qwen-0.5b", models_dir).path)


@pytest.fixture(scope="session")
def router(models_dir: Path):
    """The local model's tool choice (Qwen 0.5B, a second context on the same weights)."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from sipassist.models import resolve_llm_model
    from sipassist.voice.routing import ToolRouter

    return ToolRouter(resolve_llm_model("qwen-0.5b", models_dir).path)


# -- the daemon and the phone ---------------------------------------------------------------

class RunningDaemon:
    """A Daemon started in this process with a private state dir, JACK server and ports."""

    def __init__(self, settings: config.Settings, synthesizer, transcriber, chat=None,
                 router=None) -> None:
        self.settings = settings
        self.daemon = Daemon(settings, synthesizer=synthesizer, transcriber=transcriber,
                             chat=chat, router=router)
        assert self.daemon.start(ready_timeout=30), "telephony did not come up"
        self.url = f"http://127.0.0.1:{settings.api.port}"
        self.sip_uri = f"sip:{settings.sip.user}@{settings.sip.listen}"

    def request(self, method: str, path: str, body: object = None,
                raw: bytes | None = None) -> tuple[int, object]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None  # a 204 has no body
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def stop(self) -> None:
        self.daemon.stop()


def daemon_settings(tmp: Path, ports: PortBlocks, phone_port: int, **overrides) -> config.Settings:
    base = ports.take()
    data = {
        "sip": {"listen": f"127.0.0.1:{base}", "interface": "127.0.0.1",
                "dns_server": "127.0.0.1:53", "ctrl_port": base + 5,
                "rtp_ports": f"{base + 10}-{base + 99}", "dial_domain": f"127.0.0.1:{phone_port}"},
        # No request limit: a test module sends hundreds a minute (limit tests set their own).
        "api": {"host": "127.0.0.1", "port": free_tcp_port(),
                "limits": {"requests_per_minute": 0}},
        "audio": {"jack_server": f"sipassist-test-{base}"},
        "paths": {"state_dir": str(tmp / "state"), "runtime_dir": str(tmp / "run")},
        "webhooks": {"backoff_seconds": 0.2, "backoff_max_seconds": 1.0},
        # Tests script what the phone says from the moment it answers, so the message must
        # start at once: telling a person from a machine (about 2 s) is on only where a test
        # asks for it (test_voicemail.py, test_outbound_calls.py).
        "calls": {"hangup_pause_seconds": 0.3, "machine_detection": False},
        "llm": {"backend": "none"},  # tests that talk to the LLM pass a loaded one in
    }
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return config.parse(data)


@pytest.fixture
def phone(tmp_path: Path, ports: PortBlocks) -> Iterator[TestPhone]:
    """A phone that answers at once."""
    test_phone = ports.phone(tmp_path / "phone")
    yield test_phone
    test_phone.stop()


@pytest.fixture
def manual_phone(tmp_path: Path, ports: PortBlocks) -> Iterator[TestPhone]:
    """A phone that rings until told to answer (or reject)."""
    test_phone = ports.phone(tmp_path / "manual", answermode="manual")
    yield test_phone
    test_phone.stop()


@pytest.fixture
def start_daemon(tmp_path: Path, ports: PortBlocks, synthesizer, transcriber):
    """Factory: start_daemon(phone, **section_overrides); every daemon is stopped afterwards."""
    started: list[RunningDaemon] = []

    def start(phone: TestPhone, state: Path | None = None, chat=None, router=None,
              **overrides) -> RunningDaemon:
        settings = daemon_settings(state or tmp_path, ports, phone.sip_port, **overrides)
        running = RunningDaemon(settings, synthesizer, transcriber, chat, router)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


# -- a webhook receiver -----------------------------------------------------------------------

class WebhookReceiver:
    """An HTTP server on loopback that records JSON POSTs; wait() blocks until N arrived.

    `raw` and `headers` keep each POST's exact bytes and headers, in the order of `bodies`
    (for signature checks)."""

    def __init__(self, port: int = 0) -> None:
        self.bodies: list[dict] = []
        self.raw: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (stdlib name)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                body = json.loads(raw)
                self.send_response(200)
                self.end_headers()
                with receiver._cond:
                    receiver.raw.append(raw)
                    receiver.headers.append(dict(self.headers.items()))
                    receiver.bodies.append(body)
                    receiver._cond.notify_all()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, count: int = 1, timeout: float = 60.0) -> list[dict]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.bodies) >= count, timeout)
        assert ok, f"expected {count} webhook(s), got {len(self.bodies)} within {timeout} s"
        return list(self.bodies)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()
