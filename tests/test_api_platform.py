"""The platform API on the real daemon: OpenAPI and /docs, keys, rate limits, bounded requests.

One daemon serves the module, with an admin token in its config and a phone that rings until
told otherwise. Keys are made with the CLI (a subprocess on the same state directory) and the
API, and each is used for real over loopback.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipassist.api.routing import openapi_path
from sipassist.telephony.events import CALL_CLOSED, CALL_INCOMING

from .conftest import PortBlocks, RunningDaemon, daemon_settings
from .phone import TestPhone
from .test_api_routing import read_all

pytestmark = [pytest.mark.telephony, pytest.mark.models]

TOKEN = "platform-admin-token_0123456789abcdef"
# The contract's routes (seed 003), which must stay where they are.
CONTRACT = {("GET", "/health"), ("GET", "/queue"), ("POST", "/call"), ("GET", "/call/{call_id}"),
            ("GET", "/tools"), ("GET", "/tools/{name}"), ("POST", "/tools/{name}/execute"),
            ("POST", "/tools/{name}/call"), ("POST", "/schedule"), ("GET", "/schedule"),
            ("GET", "/schedule/{schedule_id}"), ("DELETE", "/schedule/{schedule_id}"),
            ("POST", "/speak")}


class Platform:
    def __init__(self, daemon: RunningDaemon, phone: TestPhone, config: Path) -> None:
        self.daemon = daemon
        self.phone = phone
        self.config = config
        self.port = daemon.settings.api.port

    def request(self, method: str, path: str, body: object = None, key: str | None = TOKEN,
                header: str = "bearer", extra: dict | None = None
                ) -> tuple[int, dict, object]:
        headers = {"Content-Type": "application/json", **(extra or {})}
        if key is not None:
            headers.update({"Authorization": f"Bearer {key}"} if header == "bearer"
                           else {"api-key": key})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request(method, path, None if body is None else json.dumps(body), headers)
            response = conn.getresponse()
            raw = response.read()
            head = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        content = json.loads(raw) if head.get("content-type") == "application/json" else raw
        return response.status, head, content

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
        return subprocess.run([sys.executable, "-m", "sipassist", "keys", *args, "--config",
                               str(self.config)], capture_output=True, text=True, env=env,
                              timeout=60)

    def cli_key(self, name: str, *options: str) -> str:
        done = self.cli("create", name, *options)
        assert done.returncode == 0, done.stderr
        return next(line for line in done.stdout.splitlines() if line.startswith("sipa_"))


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, ports: PortBlocks,
             synthesizer, transcriber) -> Iterator[Platform]:
    tmp: Path = tmp_path_factory.mktemp("platform")
    phone = ports.phone(tmp / "phone", answermode="manual")
    try:
        settings = daemon_settings(tmp, ports, phone.sip_port, api={"token": TOKEN})
        config = tmp / "sipassist.toml"
        config.write_text(f'[paths]\nstate_dir = "{settings.paths.state_dir}"\n')
        daemon = RunningDaemon(settings, synthesizer, transcriber)
        try:
            yield Platform(daemon, phone, config)
        finally:
            daemon.stop()
    finally:
        phone.stop()


def error_of(body: object, status: int) -> str:
    assert isinstance(body, dict) and set(body) == {"detail", "error"}, body
    assert body["error"]["statusCode"] == status and body["error"]["message"] == body["detail"]
    return body["detail"]


# -- OpenAPI and /docs ------------------------------------------------------------------------

def test_openapi_document_is_valid_and_complete(platform: Platform) -> None:
    from openapi_spec_validator import validate

    status, _, doc = platform.request("GET", "/openapi.json", key=None)  # open: no key
    assert status == 200
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    documented = {(method.upper(), path) for path, item in doc["paths"].items()
                  for method in item}
    # Walk what the app really serves (Bottle's routes), not the declarations.
    served = {(route.method, openapi_path(route.rule))
              for route in platform.daemon.daemon.app.api.app.routes}
    assert served == documented, served ^ documented
    assert CONTRACT <= served
    assert {("POST", "/v1/keys"), ("GET", "/v1/keys"), ("DELETE", "/v1/keys/{name}"),
            ("GET", "/docs"), ("GET", "/openapi.json")} <= served
    # The seeds' examples are in the schemas.
    schemas = json.dumps(doc["components"]["schemas"])
    assert "out-1732945860-1" in schemas and "Say yes to confirm or no to cancel." in schemas
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert set(doc["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}


def test_answers_match_their_declared_schemas(platform: Platform) -> None:
    """What the routes really return is what the document says (for those a GET can call)."""
    from pydantic import TypeAdapter

    checked = []
    for op in platform.daemon.daemon.app.api.operations:
        if op.method != "GET" or "<" in op.rule or op.response is None \
                or not hasattr(op.response, "__mro__") and not hasattr(op.response, "__args__"):
            continue
        status, _, body = platform.request("GET", op.rule)
        assert status == 200, (op.rule, body)
        TypeAdapter(op.response).validate_python(body, strict=True)
        checked.append(op.rule)
    assert {"/health", "/queue", "/tools", "/schedule", "/calls", "/v1/keys"} <= set(checked)


def test_docs_page_has_no_outside_references(platform: Platform) -> None:
    status, headers, page = platform.request("GET", "/docs", key=None,
                                             extra={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["content-encoding"] == "gzip"
    html = gzip.decompress(page).decode()
    assert "/openapi.json" in html and "SwaggerUIBundle" in html
    for attribute in ('src="http', "src='http", 'href="http', "href='http", "@import url(http"):
        assert attribute not in html, attribute


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_docs_render_in_chromium_offline(platform: Platform, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{platform.port}/docs"
    # Every host name fails to resolve and everything but loopback goes to a dead proxy:
    # a page that needed a CDN would render nothing.
    offline = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
               "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"]
    base = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
            "--no-first-run", "--virtual-time-budget=15000", *offline]
    dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Rendered by Swagger UI's scripts: operation blocks with their paths and summaries.
    assert dom.stdout.count('class="opblock ') >= len(CONTRACT), dom.stdout[-2000:]
    for text in ("/health", "/call/{call_id}", "/v1/keys", "Place an outbound notification call"):
        assert text in dom.stdout, text
    shot = tmp_path / "docs.png"
    done = subprocess.run([*base, "--window-size=1280,1600", f"--screenshot={shot}", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    assert colours_in_png(shot.read_bytes()) >= 8  # a blank page has one or two


def colours_in_png(png: bytes) -> int:
    """Distinct pixel values in an 8-bit RGB(A) PNG (Chromium's screenshots)."""
    import struct
    import zlib

    import numpy as np

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, -1)
    stride = width * channels
    rows = np.zeros((height, stride), dtype=np.int32)
    for y in range(height):  # undo the PNG row filters
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        up = rows[y - 1] if y else np.zeros(stride, dtype=np.int32)
        if kind == 0:
            rows[y] = line
        elif kind == 2:
            rows[y] = (line + up) % 256
        else:  # 1 (sub), 3 (average), 4 (Paeth) depend on the left pixel: go pixel by pixel
            out = np.zeros(stride, dtype=np.int32)
            for x in range(stride):
                left = out[x - channels] if x >= channels else 0
                corner = up[x - channels] if x >= channels else 0
                if kind == 1:
                    out[x] = (line[x] + left) % 256
                elif kind == 3:
                    out[x] = (line[x] + (left + up[x]) // 2) % 256
                else:
                    p = left + up[x] - corner
                    pa, pb, pc = abs(p - left), abs(p - up[x]), abs(p - corner)
                    pred = left if pa <= pb and pa <= pc else up[x] if pb <= pc else corner
                    out[x] = (line[x] + pred) % 256
            rows[y] = out
    pixels = rows.reshape(height, width, channels)[::8, ::8, :3].reshape(-1, 3)
    return len({tuple(p) for p in pixels.tolist()})


# -- keys ------------------------------------------------------------------------------------

def test_keys_cli_and_api_agree(platform: Platform) -> None:
    cli_key = platform.cli_key("cli-made")
    # Both headers work for a key from the CLI, at once (the daemon re-reads the file).
    assert platform.request("GET", "/queue", key=cli_key)[0] == 200
    assert platform.request("GET", "/queue", key=cli_key, header="api-key")[0] == 200

    status, _, made = platform.request("POST", "/v1/keys", {"name": "api-made"})
    assert status == 201 and made["key"].startswith("sipa_") and made["role"] == "standard"
    assert platform.request("GET", "/queue", key=made["key"], header="api-key")[0] == 200

    # Both sides list both, and neither shows a secret again.
    status, _, listed = platform.request("GET", "/v1/keys")
    assert status == 200 and {"cli-made", "api-made"} <= {k["name"] for k in listed}
    assert made["key"] not in json.dumps(listed) and cli_key not in json.dumps(listed)
    shown = platform.cli("list")
    assert shown.returncode == 0 and "cli-made" in shown.stdout and "api-made" in shown.stdout
    assert "sipa_" not in shown.stdout
    stored = (Path(platform.daemon.settings.paths.state_dir) / "api_keys.json").read_text()
    assert cli_key not in stored and made["key"] not in stored  # hashed only

    # A standard key may not manage keys; a wrong one is refused.
    status, _, body = platform.request("GET", "/v1/keys", key=cli_key)
    assert status == 403 and "admin" in error_of(body, 403)
    status, headers, body = platform.request("GET", "/queue", key=cli_key + "x")
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert "wrong API token" in error_of(body, 401)

    # Revoked on one side, refused on the other.
    assert platform.cli("revoke", "api-made").returncode == 0
    status, _, body = platform.request("GET", "/queue", key=made["key"])
    assert status == 401 and "revoked" in error_of(body, 401)
    status, _, _ = platform.request("DELETE", "/v1/keys/cli-made")
    assert status == 200
    assert platform.request("GET", "/queue", key=cli_key, header="api-key")[0] == 401
    assert "revoked" in platform.cli("list").stdout
    assert platform.request("DELETE", "/v1/keys/cli-made")[0] == 404


def test_read_only_key_may_only_read(platform: Platform) -> None:
    key = platform.cli_key("reader", "--read-only")
    assert platform.request("GET", "/queue", key=key)[0] == 200
    before = platform.request("GET", "/queue")[2]
    status, _, body = platform.request("POST", "/call", {"message": "Hi", "extension": "phone"},
                                       key=key)
    assert status == 403 and "read-only" in error_of(body, 403)
    assert platform.request("GET", "/queue")[2] == before  # nothing was queued
    status, _, body = platform.request("POST", "/v1/keys", {"name": "x"}, key=key,
                                       header="api-key")
    assert status == 403


def test_health_and_docs_stay_open(platform: Platform) -> None:
    assert platform.request("GET", "/health", key=None)[0] == 200
    assert platform.request("GET", "/health", key="nonsense")[0] == 200
    status, _, body = platform.request("GET", "/queue", key=None)
    assert status == 401 and "API token required" in error_of(body, 401)


# -- rate limits -----------------------------------------------------------------------------

def test_key_limited_to_five_a_minute(platform: Platform) -> None:
    status, _, made = platform.request("POST", "/v1/keys", {
        "name": "five-a-minute", "limits": {"requests_per_minute": 5}})
    assert status == 201 and made["limits"] == {"requests_per_minute": 5}
    key = made["key"]
    # Start early in a minute, so the five and the sixth fall into one window.
    if 60 - time.time() % 60 < 15:
        time.sleep(60 - time.time() % 60 + 0.1)
    remaining, resets = [], set()
    for _ in range(5):
        status, headers, _ = platform.request("GET", "/queue", key=key)
        assert status == 200
        assert headers["x-ratelimit-limit"] == "5"
        remaining.append(int(headers["x-ratelimit-remaining"]))
        resets.add(int(headers["x-ratelimit-reset"]))
    assert remaining == [4, 3, 2, 1, 0]
    assert len(resets) == 1 and 0 < resets.pop() - time.time() <= 60
    status, headers, body = platform.request("GET", "/queue", key=key)
    assert status == 429
    assert "rate limit" in error_of(body, 429)
    assert body["error"]["name"] == "TooManyRequestsError"
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-remaining"] == "0"
    # Another key is not affected.
    assert platform.request("GET", "/queue")[0] == 200


def test_wrong_keys_are_logged_once_a_minute(platform: Platform, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sipassist.api.gate")
    for _ in range(40):
        assert platform.request("GET", "/queue", key="sipa_00000000_wrong")[0] == 401
    lines = [r for r in caplog.records if r.name == "sipassist.api.gate"]
    assert len(lines) <= 1, [r.getMessage() for r in lines]


# -- bounded requests ------------------------------------------------------------------------

def rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_50_mb_body_is_refused_before_it_is_read(platform: Platform) -> None:
    """As curl sends a large body: headers with `Expect: 100-continue`, then it waits.

    The answer must be a 413 at once (no "100 Continue" asking for the body), and the daemon's
    memory must not grow by the body."""
    before = rss_kib()
    with socket.create_connection(("127.0.0.1", platform.port), timeout=20) as sock:
        sock.sendall(b"POST /call HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {TOKEN}\r\n".encode()
                     + b"Expect: 100-continue\r\nContent-Length: 52428800\r\n\r\n")
        answer = read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert "52428800 bytes" in error_of(json.loads(body), 413)
    assert rss_kib() - before < 8 * 1024  # not 50 MB
    assert platform.request("GET", "/health", key=None)[0] == 200


def test_50_mb_body_sent_regardless_is_not_kept(platform: Platform) -> None:
    """A client that pushes all 50 MB at once: refused and cut off, never held in memory."""
    before = rss_kib()
    chunk = b"{" * (1 << 20)
    with socket.create_connection(("127.0.0.1", platform.port), timeout=20) as sock:
        sock.sendall(b"POST /call HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {TOKEN}\r\n".encode()
                     + b"Content-Length: 52428800\r\n\r\n")
        sent = 0
        try:
            for _ in range(50):
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server closed the connection: the rest was never wanted
            pass
    assert sent < 50 * len(chunk)
    assert rss_kib() - before < 8 * 1024
    assert platform.request("GET", "/health", key=None)[0] == 200


def test_idle_connections_do_not_stop_health(platform: Platform) -> None:
    idle = []
    try:
        for index in range(300):
            sock = socket.create_connection(("127.0.0.1", platform.port), timeout=10)
            if index % 3 == 0:  # some send half a request and stop (slow clients)
                sock.sendall(b"GET /queue HTTP/1.1\r\nHost: box\r\n")
            idle.append(sock)
        started = time.monotonic()
        status, _, body = platform.request("GET", "/health", key=None)
        assert status == 200 and body["status"] == "healthy"
        assert platform.request("GET", "/queue")[0] == 200
        assert time.monotonic() - started < 5
    finally:
        for sock in idle:
            sock.close()


def test_1100_idle_connections_while_a_call_rings(platform: Platform) -> None:
    phone = platform.phone
    status, _, placed = platform.request("POST", "/call", {
        "message": "Ringing under load.", "extension": "phone", "ring_timeout": 30})
    assert status == 200
    phone.wait_event(CALL_INCOMING)
    idle = []
    try:
        for _ in range(1100):
            idle.append(socket.create_connection(("127.0.0.1", platform.port), timeout=10))
        status, _, health = platform.request("GET", "/health", key=None)
        assert status == 200 and health["active_calls"] >= 0
        status, _, shown = platform.request("GET", f"/call/{placed['call_id']}")
        assert status == 200 and shown["status"] == "ringing", shown
        # The queue still takes work.
        status, _, second = platform.request("POST", "/call", {
            "message": "After the load.", "extension": "phone", "ring_timeout": 1})
        assert status == 200 and second["status"] == "queued"
        phone.command("hangup")  # reject the ringing call: 486 Busy
        phone.wait_event(CALL_CLOSED)
    finally:
        for sock in idle:
            sock.close()
    # The second call is dialled and rings out: the queue worker survived.
    phone.wait_event(CALL_INCOMING)
    phone.wait_event(CALL_CLOSED)
    for _ in range(100):  # the daemon records the end a moment after the phone sees it
        record = platform.request("GET", f"/call/{second['call_id']}")[2]
        if record["status"] not in ("queued", "ringing", "in_progress"):
            break
        time.sleep(0.1)
    assert record["status"] == "no_answer", record
