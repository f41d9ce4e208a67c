"""Webhook delivery that never blocks a call and loses nothing.

`WebhookSender.send` only writes the job to the store and returns; one background thread POSTs
the jobs, earliest due first, retrying transient failures with exponential backoff. Jobs live
in the store until delivered or given up, so a restart resumes them.

Delivery is at least once: a kill between the target's 2xx and the job's removal sends it again
after restart, so each request carries an X-Sipassist-Job-Id header for receivers to drop repeats.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from sipassist import __version__
from sipassist.config import WebhookSettings
from sipassist.store import Store

log = logging.getLogger(__name__)

TABLE = "webhooks"
MAX_URL_LENGTH = 2048
_BAD_URL = "callback_url must be an http:// or https:// URL with a host"


def validate_callback_url(url: object) -> str | None:
    """An error message fit for an API 400 `detail`, or None if `url` can take webhooks."""
    if not isinstance(url, str):
        return "callback_url must be a string"
    if len(url) > MAX_URL_LENGTH:
        return f"callback_url must be at most {MAX_URL_LENGTH} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "callback_url must not contain spaces or control characters"
    if not url.isascii():
        # http.client cannot put non-ASCII in a request line; fail now, not at delivery.
        return "callback_url must be ASCII; percent-encode other characters"
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a bad port
    except ValueError:
        return _BAD_URL
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _BAD_URL
    return None


@dataclass(frozen=True)
class WebhookJob:
    job_id: str
    url: str
    payload: dict[str, Any]
    attempts: int  # attempts made so far
    next_attempt_at: float  # unix time

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> WebhookJob:
        return cls(
            job_id=str(doc["job_id"]),
            url=str(doc["url"]),
            payload=dict(doc["payload"]),
            attempts=int(doc["attempts"]),
            next_attempt_at=float(doc["next_attempt_at"]),
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a 301/302/303 with a body-less GET: a "success" that loses the payload.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _safe_url(url: str) -> str:
    """The URL for logs, without credentials or query string, where tokens tend to live."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}{parts.path}" + ("?..." if parts.query else "")


def _ids(payload: dict[str, Any]) -> str:
    ids = [f"{key}={payload[key]}" for key in ("call_id", "schedule_id") if key in payload]
    return " ".join(ids) or "no call_id/schedule_id"


class WebhookSender:
    """Delivers webhooks from the store's "webhooks" table on one background thread."""

    def __init__(
        self, store: Store, settings: WebhookSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Told "delivered", "failed" (to be retried) or "dropped" after each attempt (metrics).
        self.on_result: Callable[[str], None] | None = None

    def start(self) -> None:
        """Start the delivery thread; jobs left by an earlier run are delivered too."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("WebhookSender is already running")
        unreadable = len(self._store.all(TABLE)) - len(self._jobs())
        if unreadable:
            log.error("ignoring %d unreadable webhook job(s) in %s", unreadable, self._store.path)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        """Stop after the delivery in progress, if any; undelivered jobs stay in the store."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("webhook thread still busy after %.1fs; its job stays queued", timeout)
            self._thread = None

    def send(self, url: str, payload: dict[str, Any]) -> str:
        """Queue a POST of `payload` as JSON to `url` and return its job id at once."""
        error = validate_callback_url(url)
        if error:
            raise ValueError(error)
        if not isinstance(payload, dict):
            raise TypeError("webhook payload must be a dict")
        json.dumps(payload, allow_nan=False)  # fail in the caller, not later on the thread
        job = WebhookJob(uuid.uuid4().hex, url, payload, attempts=0, next_attempt_at=self._clock())
        self._store.insert(TABLE, job.to_doc())
        with self._wake:
            self._wake.notify_all()
        return job.job_id

    def pending(self) -> int:
        return len(self._store.all(TABLE))

    def _jobs(self) -> list[WebhookJob]:
        jobs = []
        for doc in self._store.all(TABLE):
            try:
                jobs.append(WebhookJob.from_doc(doc))
            except (KeyError, TypeError, ValueError):
                pass  # reported once by start(); left in the file for a person to inspect
        return jobs

    def _run(self) -> None:
        while True:
            try:
                with self._wake:
                    if self._stopping:
                        return
                    # The earliest due job, so a target that keeps failing waits its turn.
                    job = min(self._jobs(), key=lambda j: j.next_attempt_at, default=None)
                    delay = job.next_attempt_at - self._clock() if job else None
                    if delay is None or delay > 0:
                        self._wake.wait(delay)
                        continue
                # Outside the lock: send() must never wait for a slow target.
                self._attempt(job)
            except Exception:
                # A store error (disk full, say) must not end delivery for good.
                log.exception("webhook delivery loop failed; retrying")
                with self._wake:
                    if not self._stopping:
                        self._wake.wait(max(self._settings.backoff_seconds, 1.0))

    def _attempt(self, job: WebhookJob) -> None:
        failure = self._post(job)
        attempt = job.attempts + 1
        url = _safe_url(job.url)
        if failure is None:
            self._store.remove(TABLE, "job_id", job.job_id)
            log.info("webhook to %s delivered (%s)", url, _ids(job.payload))
            self._report("delivered")
            return
        retryable, reason = failure
        retry = retryable and attempt < self._settings.max_attempts
        self._report("failed" if retry else "dropped")
        log.warning(
            "webhook to %s attempt %d/%d failed: %s",
            url, attempt, self._settings.max_attempts, reason,
        )
        if retryable and attempt < self._settings.max_attempts:
            self._store.update(
                TABLE, "job_id", job.job_id,
                {"attempts": attempt, "next_attempt_at": self._clock() + self._backoff(attempt)},
            )
            return
        self._store.remove(TABLE, "job_id", job.job_id)
        why = "giving up" if retryable else "permanent failure"
        log.error(
            "webhook to %s dropped after %d attempt(s), %s: %s (%s)",
            url, attempt, why, reason, _ids(job.payload),
        )

    def _report(self, result: str) -> None:
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:  # metrics must never stop delivery
                log.exception("webhook result hook failed")

    def _backoff(self, attempt: int) -> float:
        s = self._settings
        delay = min(s.backoff_seconds * 2 ** (attempt - 1), s.backoff_max_seconds)
        # Up to 10% shorter, so jobs that failed together do not retry in lockstep.
        return delay * (1 - 0.1 * random.random())

    def _post(self, job: WebhookJob) -> tuple[bool, str] | None:
        """None on a 2xx, else (worth retrying, reason)."""
        request = urllib.request.Request(
            job.url,
            data=json.dumps(job.payload, allow_nan=False).encode("utf-8"),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"sipassist/{__version__}",
                "X-Sipassist-Job-Id": job.job_id,
            },
        )
        try:
            with self._opener.open(request, timeout=self._settings.timeout_seconds) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            status = exc.code
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timeout, DNS
            return True, str(getattr(exc, "reason", "") or exc) or type(exc).__name__
        except ValueError as exc:  # a URL urllib cannot use; retrying will not help
            return False, str(exc)
        if 200 <= status < 300:
            return None
        if 300 <= status < 400:
            return False, f"HTTP {status} (redirects are not followed)"
        return status >= 500 or status == 429, f"HTTP {status}"
