from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sipassist import __version__
from sipassist.config import WebhookSettings
from sipassist.store import Store
from sipassist.webhooks import WebhookSender, validate_callback_url

FAST = WebhookSettings(
    max_attempts=50, timeout_seconds=2.0, backoff_seconds=0.05, backoff_max_seconds=0.2
)
WAIT = 5.0  # seconds; an upper bound for anything to happen, never a sleep


class Receiver:
    """A real HTTP server recording the JSON bodies POSTed to it."""

    def __init__(self, port: int = 0, statuses: list[int] | None = None) -> None:
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self._statuses = list(statuses or [])  # replies in turn; 200 once used up
        self._seen = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._seen:
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.url)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._seen:
                    receiver.bodies.append(json.loads(body))
                    receiver.headers.append(dict(self.headers))
                    receiver._seen.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def wait_for(self, count: int) -> bool:
        """Wait until `count` requests have arrived."""
        with self._seen:
            return self._seen.wait_for(lambda: len(self.bodies) >= count, timeout=WAIT)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(WAIT)


class LogSignal(logging.Handler):
    """Sets an event when a webhook failure is logged, to know an attempt has been made."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.failed = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "attempt" in record.getMessage() and "failed" in record.getMessage():
            self.failed.set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cleanup() -> Iterator[list[Callable[[], None]]]:
    """Closers run in reverse order at teardown, whether the test passed or not."""
    closers: list[Callable[[], None]] = []
    try:
        yield closers
    finally:
        for close in reversed(closers):
            close()


@pytest.fixture
def make_receiver(cleanup: list[Callable[[], None]]) -> Callable[..., Receiver]:
    def make(port: int = 0, statuses: list[int] | None = None) -> Receiver:
        receiver = Receiver(port, statuses)
        cleanup.append(receiver.close)
        return receiver

    return make


@pytest.fixture
def make_sender(
    tmp_path: Path, cleanup: list[Callable[[], None]]
) -> Callable[..., tuple[WebhookSender, Store]]:
    def make(settings: WebhookSettings = FAST, **kwargs: Any) -> tuple[WebhookSender, Store]:
        store = Store(tmp_path / "webhooks.json")
        cleanup.append(store.close)
        sender = WebhookSender(store, settings, **kwargs)
        cleanup.append(sender.stop)
        sender.start()
        return sender, store

    return make


@pytest.fixture
def log_signal() -> Iterator[LogSignal]:
    handler = LogSignal()
    logger = logging.getLogger("sipassist.webhooks")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


PAYLOAD = {
    "call_id": "c-123",
    "status": "completed",
    "transcript": "héllo ✓ \"quoted\"\nnext line",
    "duration": 12.5,
    "digits": "0042",
    "details": {"answered": True, "retries": [1, 2, None], "empty": {}},
}


def test_payload_arrives_exactly_as_sent(make_receiver, make_sender) -> None:
    receiver = make_receiver()
    sender, _ = make_sender()

    job_id = sender.send(receiver.url, PAYLOAD)

    assert receiver.wait_for(1)
    assert receiver.bodies == [PAYLOAD]
    headers = receiver.headers[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"sipassist/{__version__}"
    assert headers["X-Sipassist-Job-Id"] == job_id
    sender.stop()  # finishes the delivery in hand, so the job's removal is settled
    assert sender.pending() == 0


def test_target_down_at_first_is_retried(make_receiver, make_sender, log_signal) -> None:
    port = free_port()
    sender, _ = make_sender()

    sender.send(f"http://127.0.0.1:{port}/hook", PAYLOAD)
    assert log_signal.failed.wait(WAIT)  # an attempt was refused
    assert sender.pending() == 1

    receiver = make_receiver(port)
    assert receiver.wait_for(1)
    assert receiver.bodies == [PAYLOAD]
    sender.stop()
    assert sender.pending() == 0


def test_5xx_and_429_are_retried(make_receiver, make_sender) -> None:
    receiver = make_receiver(statuses=[503, 429, 200])
    sender, _ = make_sender()

    sender.send(receiver.url, PAYLOAD)

    assert receiver.wait_for(3)
    sender.stop()
    assert receiver.bodies == [PAYLOAD] * 3
    assert sender.pending() == 0


def test_4xx_is_dropped_after_one_attempt(make_receiver, make_sender, caplog) -> None:
    receiver = make_receiver(statuses=[404])
    sender, _ = make_sender()

    with caplog.at_level(logging.WARNING, logger="sipassist.webhooks"):
        sender.send(receiver.url, PAYLOAD)
        assert receiver.wait_for(1)
        sender.stop()

    assert sender.pending() == 0
    assert len(receiver.bodies) == 1
    assert "HTTP 404" in caplog.text and "call_id=c-123" in caplog.text


def test_gives_up_after_max_attempts(make_receiver, make_sender, caplog) -> None:
    receiver = make_receiver(statuses=[500] * 10)
    sender, _ = make_sender(
        WebhookSettings(max_attempts=3, timeout_seconds=2.0, backoff_seconds=0.01)
    )

    with caplog.at_level(logging.WARNING, logger="sipassist.webhooks"):
        sender.send(receiver.url, {"schedule_id": "s-9"})
        assert receiver.wait_for(3)
        sender.stop()

    assert sender.pending() == 0
    assert len(receiver.bodies) == 3
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "schedule_id=s-9" in errors[0].getMessage()
    assert "/hook" in errors[0].getMessage()


def test_a_restart_loses_nothing(make_receiver, make_sender, log_signal) -> None:
    port = free_port()
    sender_a, store_a = make_sender()
    sender_a.send(f"http://127.0.0.1:{port}/hook", PAYLOAD)
    assert log_signal.failed.wait(WAIT)
    sender_a.stop()
    store_a.close()
    # The job and its attempt count survived on disk.
    with Store(store_a.path) as peek:
        jobs = peek.all("webhooks")
    assert len(jobs) == 1 and jobs[0]["attempts"] >= 1

    receiver = make_receiver(port)
    sender_b, _ = make_sender()
    assert receiver.wait_for(1)
    assert receiver.bodies == [PAYLOAD]
    sender_b.stop()
    assert sender_b.pending() == 0


def test_redirect_is_not_followed(make_receiver, make_sender) -> None:
    # urllib would follow it with a GET that drops the body; a 3xx is a permanent failure.
    receiver = make_receiver(statuses=[302])
    sender, _ = make_sender()

    sender.send(receiver.url, PAYLOAD)

    assert receiver.wait_for(1)
    sender.stop()
    assert sender.pending() == 0
    assert len(receiver.bodies) == 1


def test_a_silent_target_holds_up_others_only_for_its_timeout(
    make_receiver, make_sender, cleanup
) -> None:
    # Accepts connections (the kernel completes them) but never answers.
    silent = socket.create_server(("127.0.0.1", 0))
    cleanup.append(silent.close)
    receiver = make_receiver()
    sender, store = make_sender(
        WebhookSettings(max_attempts=50, timeout_seconds=0.3, backoff_seconds=10.0)
    )

    sender.send(f"http://127.0.0.1:{silent.getsockname()[1]}/slow", {"call_id": "slow"})
    sender.send(receiver.url, PAYLOAD)

    assert receiver.wait_for(1)
    assert receiver.bodies == [PAYLOAD]
    sender.stop()
    [slow] = store.all("webhooks")
    assert slow["payload"] == {"call_id": "slow"} and slow["attempts"] == 1


def test_send_rejects_what_cannot_be_delivered(tmp_path: Path) -> None:
    with Store(tmp_path / "w.json") as store:
        sender = WebhookSender(store, FAST)  # not started: send() must not need the thread
        with pytest.raises(ValueError):
            sender.send("ftp://example.com/", {})
        with pytest.raises(ValueError):
            sender.send("http://127.0.0.1:9/hook", {"x": float("nan")})
        with pytest.raises(TypeError):
            sender.send("http://127.0.0.1:9/hook", {"x": object()})
        assert sender.pending() == 0
        sender.send("http://127.0.0.1:9/hook", {})
        assert sender.pending() == 1  # queued even while the thread is not running


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x",
        "http://",
        "not a url",
        "http://a b",
        "http://example.com/\x00",
        "http://exämple.com/",
        "http://example.com:99999/",
        "http://" + "a" * 3000,
        42,
        None,
    ],
)
def test_validate_callback_url_rejects(url: object) -> None:
    error = validate_callback_url(url)
    assert isinstance(error, str) and error.startswith("callback_url ")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "https://example.com/a?b=c", "http://[::1]:8080/x"],
)
def test_validate_callback_url_accepts(url: str) -> None:
    assert validate_callback_url(url) is None


class AttemptCounter(logging.Handler):
    """Counts failed attempts as they are logged, so a test can wait for the Nth."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        if "attempt" in record.getMessage() and "failed:" in record.getMessage():
            with self.cond:
                self.count += 1
                self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.count >= count, timeout)


def test_a_receiver_down_past_the_old_eight_attempts_still_gets_it(
    make_receiver, make_sender
) -> None:
    counter = AttemptCounter()
    logger = logging.getLogger("sipassist.webhooks")
    logger.addHandler(counter)
    try:
        port = free_port()
        sender, _ = make_sender(WebhookSettings(timeout_seconds=2.0, backoff_seconds=0.01,
                                                backoff_max_seconds=0.05))
        sender.send(f"http://127.0.0.1:{port}/hook", PAYLOAD)
        assert counter.wait_for(12)  # the old limit was 8 attempts
        assert sender.pending() == 1
        receiver = make_receiver(port)
        assert receiver.wait_for(1)
        assert receiver.bodies == [PAYLOAD]
        sender.stop()
        assert sender.pending() == 0
        assert sender.deliveries("failed") == []
    finally:
        logger.removeHandler(counter)


def test_past_the_horizon_a_delivery_is_kept_as_failed_and_logged(
    make_sender, caplog
) -> None:
    port = free_port()
    clock = [1_000_000.0]
    settings = WebhookSettings(retry_hours=1.0, timeout_seconds=2.0, backoff_seconds=0.01,
                               backoff_max_seconds=0.01)
    counter = AttemptCounter()
    logger = logging.getLogger("sipassist.webhooks")
    logger.addHandler(counter)
    try:
        with caplog.at_level(logging.WARNING, logger="sipassist.webhooks"):
            sender, _ = make_sender(settings, clock=lambda: clock[0])
            sender.send(f"http://127.0.0.1:{port}/hook?token=secret", {"call_id": "late"})
            assert counter.wait_for(1)
            [pending] = sender.deliveries("pending")
            assert pending["status"] == "pending" and pending["attempts"] >= 1
            assert "refused" in pending["last_error"].lower()
            assert sender.deliveries("failed") == []
            clock[0] += 3601  # an hour later: the next failure is the last
            assert counter.wait_for(counter.count + 1)
            sender.stop()
    finally:
        logger.removeHandler(counter)

    assert sender.pending() == 0
    [failed] = sender.deliveries("failed")
    assert failed["url"] == f"http://127.0.0.1:{port}/hook?token=secret"
    assert failed["payload"] == {"call_id": "late"} and failed["status"] == "failed"
    assert failed["attempts"] >= 2 and failed["last_error"] and failed["failed_at"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "call_id=late" in errors[0] and "failed for good" in errors[0]
    assert "secret" not in caplog.text  # the query string stays out of the log


def test_the_api_lists_pending_and_failed_deliveries(make_receiver, make_sender, cleanup,
                                                     tmp_path) -> None:
    import urllib.error
    import urllib.request

    from sipassist.api import webhooks
    from sipassist.api.gate import Gate
    from sipassist.api.keys import KeyStore
    from sipassist.api.routing import Api
    from sipassist.api.server import ApiServer
    from sipassist.api.services import Services
    from sipassist.config import ApiSettings

    receiver = make_receiver(statuses=[410])  # a permanent failure: failed after one attempt
    sender, _ = make_sender()
    counter_port = free_port()
    sender.send(receiver.url, {"call_id": "gone"})
    assert receiver.wait_for(1)
    sender.stop()  # settles the failure; the next job stays pending
    sender.send(f"http://127.0.0.1:{counter_port}/hook", {"call_id": "waiting"})

    api = Api()
    webhooks.install(api, Services(settings=None, switchboard=None, queue=None, placer=None,
                                   active=None, speak=None, tools=None, schedules=None,
                                   webhooks=sender))
    settings = ApiSettings()
    gate = Gate(api, settings, KeyStore(tmp_path))
    server = ApiServer(gate, "127.0.0.1", 0, settings, gate.screen)
    server.start()
    cleanup.append(server.stop)

    def get(query: str) -> tuple[int, dict]:
        url = f"http://127.0.0.1:{server.port}/v1/webhooks/deliveries{query}"
        try:
            with urllib.request.urlopen(url, timeout=WAIT) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, body = get("?status=failed")
    assert status == 200 and body["count"] == 1
    [failed] = body["deliveries"]
    assert failed["payload"] == {"call_id": "gone"} and failed["url"] == receiver.url
    assert failed["last_error"] == "HTTP 410" and failed["attempts"] == 1
    status, body = get("?status=pending")
    assert status == 200 and [d["payload"] for d in body["deliveries"]] == [{"call_id": "waiting"}]
    assert get("")[1]["status"] == "failed"
    status, body = get("?status=lost")
    assert status == 400 and "'pending' or 'failed'" in body["detail"]
