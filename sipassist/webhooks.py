"""Webhook delivery that never blocks a call and loses nothing.

`WebhookSender.send` only writes the job to the store and returns; one background thread POSTs
the jobs, earliest due first, retrying transient failures with exponential backoff for
`retry_hours` (default 24). Jobs live in the store until delivered, so a restart resumes them.
A job that fails for good (the horizon passed, or a 4xx / redirect) is logged at ERROR and kept
in the "failed" table, which `GET /v1/webhooks/deliveries?status=failed` lists. A job that
cannot be written (disk full) is held in memory and written, or delivered, all the same.

Delivery is at least once: a kill between the target's 2xx and the job's removal sends it again
after restart, so each request carries an X-Sipassist-Job-Id header for receivers to drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
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
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from sipassist import __version__
from sipassist.config import WebhookSettings
from sipassist.store import StorageError, Store

log = logging.getLogger(__name__)

TABLE = "webhooks"
FAILED_TABLE = "failed"
MAX_URL_LENGTH = 2048
_BAD_URL = "callback_url must be an http:// or https:// URL with a host"


def validate_callback_url(url: object, name: str = "callback_url") -> str | None:
    """An error message fit for an API 400 `detail`, or None if `url` can take webhooks."""
    if not isinstance(url, str):
        return f"{name} must be a string"
    if len(url) > MAX_URL_LENGTH:
        return f"{name} must be at most {MAX_URL_LENGTH} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return f"{name} must not contain spaces or control characters"
    if not url.isascii():
        # http.client cannot put non-ASCII in a request line; fail now, not at delivery.
        return f"{name} must be ASCII; percent-encode other characters"
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a bad port
    except ValueError:
        return _BAD_URL.replace("callback_url", name)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _BAD_URL.replace("callback_url", name)
    return None


def signature(secret: str, body: bytes) -> str:
    """The X-Sipassist-Signature value: HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookJob:
    job_id: str
    url: str
    payload: dict[str, Any]
    attempts: int  # attempts made so far
    next_attempt_at: float  # unix time
    created_at: float  # unix time; retried until retry_hours after it
    last_error: str | None = None
    # Registry deliveries (webhook_registry.py): extra headers, the signing secret, the hook.
    headers: dict[str, str] = field(default_factory=dict)
    secret: str | None = None
    webhook_id: str | None = None

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
            # Jobs from before the horizon existed count from their next attempt.
            created_at=float(doc.get("created_at", doc["next_attempt_at"])),
            last_error=doc.get("last_error"),
            headers={str(k): str(v) for k, v in (doc.get("headers") or {}).items()},
            secret=doc.get("secret"),
            webhook_id=doc.get("webhook_id"),
        )


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def delivery_view(doc: dict[str, Any], status: str) -> dict[str, Any]:
    """A job or failed delivery as the API shows it."""
    return {
        "job_id": doc.get("job_id"),
        "status": status,
        "url": doc.get("url"),
        "payload": doc.get("payload"),
        "attempts": doc.get("attempts"),
        "last_error": doc.get("last_error"),
        "created_at": _iso(doc.get("created_at")),
        "next_attempt_at": _iso(doc.get("next_attempt_at")) if status == "pending" else None,
        "failed_at": _iso(doc.get("failed_at")),
    }


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
        self, store: Store, settings: WebhookSettings, clock: Callable[[], float] = time.time,
        failed: Store | None = None,
    ) -> None:
        self._store = store
        # Failed deliveries in a file of their own: the jobs' file is read on every pass.
        self._failed = failed or store
        self._settings = settings
        self._clock = clock
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Jobs a storage error kept out of the store: delivered from here, written when it can.
        self._unsaved: dict[str, WebhookJob] = {}
        # Told each outcome of a registry delivery: (job, "delivered" | "retrying" | "failed").
        self.on_outcome: Callable[[WebhookJob, str], None] | None = None
        # Told "delivered", "failed" (to be retried) or "dropped" after each attempt (metrics).
        self.on_result: Callable[[str], None] | None = None

    def start(self) -> None:
        """Start the delivery thread; jobs left by an earlier run are delivered too."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("WebhookSender is already running")
        unreadable = len(self._store.all(TABLE)) - len(self._stored_jobs())
        if unreadable:
            log.error("ignoring %d unreadable webhook job(s) in %s", unreadable, self._store.path)
        # A stop between keeping a failed delivery and removing its job leaves both.
        failed = {doc.get("job_id") for doc in self._failed.all(FAILED_TABLE)}
        self._store.remove_many(TABLE, "job_id", [j.job_id for j in self._stored_jobs()
                                                  if j.job_id in failed])
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
        if self._unsaved:
            log.error("%d webhook(s) could not be written to %s and are lost with this stop",
                      len(self._unsaved), self._store.path)

    def send(self, url: str, payload: dict[str, Any], headers: dict[str, str] | None = None,
             secret: str | None = None, webhook_id: str | None = None) -> str:
        """Queue a POST of `payload` as JSON to `url` and return its job id at once.

        `headers` go with it; with `secret` the body is signed (X-Sipassist-Signature)."""
        error = validate_callback_url(url)
        if error:
            raise ValueError(error)
        if not isinstance(payload, dict):
            raise TypeError("webhook payload must be a dict")
        json.dumps(payload, allow_nan=False)  # fail in the caller, not later on the thread
        now = self._clock()
        job = WebhookJob(uuid.uuid4().hex, url, payload, attempts=0, next_attempt_at=now,
                         created_at=now, headers=dict(headers or {}), secret=secret,
                         webhook_id=webhook_id)
        try:
            self._store.insert(TABLE, job.to_doc())
        except StorageError:
            with self._wake:
                self._unsaved[job.job_id] = job
            log.warning("webhook to %s (%s) is held in memory until the state can be written",
                        _safe_url(url), _ids(payload))
        with self._wake:
            self._wake.notify_all()
        return job.job_id

    def pending(self) -> int:
        return len(self._store.all(TABLE)) + len(self._unsaved)

    def deliveries(self, status: str) -> list[dict[str, Any]]:
        """"pending" jobs (soonest first) or "failed" ones (latest first), as the API shows."""
        if status == "failed":
            docs = sorted(self._failed.all(FAILED_TABLE), key=lambda d: d.get("failed_at", 0),
                          reverse=True)
            return [delivery_view(doc, "failed") for doc in docs]
        jobs = sorted(self._jobs(), key=lambda j: j.next_attempt_at)
        return [delivery_view(job.to_doc(), "pending") for job in jobs]

    def _stored_jobs(self) -> list[WebhookJob]:
        jobs = []
        for doc in self._store.all(TABLE):
            try:
                jobs.append(WebhookJob.from_doc(doc))
            except (KeyError, TypeError, ValueError):
                pass  # reported once by start(); left in the file for a person to inspect
        return jobs

    def _jobs(self) -> list[WebhookJob]:
        with self._wake:
            unsaved = list(self._unsaved.values())
        return self._stored_jobs() + unsaved

    def _save_unsaved(self) -> None:
        """Write jobs held in memory (the delivery thread tries before each delivery)."""
        with self._wake:
            jobs = list(self._unsaved.values())
        for job in jobs:
            self._store.insert(TABLE, job.to_doc())  # StorageError: still unsaved, try later
            with self._wake:
                self._unsaved.pop(job.job_id, None)

    def _run(self) -> None:
        while True:
            try:
                with self._wake:
                    if self._stopping:
                        return
                if self._unsaved:
                    try:
                        self._save_unsaved()
                    except StorageError:
                        pass  # delivered from memory meanwhile; written when the disk allows
                with self._wake:
                    # The earliest due job, so a target that keeps failing waits its turn.
                    job = min(self._jobs(), key=lambda j: j.next_attempt_at, default=None)
                    delay = job.next_attempt_at - self._clock() if job else None
                    if delay is None or delay > 0:
                        self._wake.wait(delay)
                        continue
                # Outside the lock: send() must never wait for a slow target.
                self._attempt(job)
            except Exception as exc:
                # A store error (disk full, say) must not end delivery for good.
                if isinstance(exc, StorageError):
                    log.debug("webhook delivery waits for the state to be writable: %s", exc)
                else:
                    log.exception("webhook delivery loop failed; retrying")
                with self._wake:
                    if not self._stopping:
                        self._wake.wait(max(self._settings.backoff_seconds, 1.0))

    def _attempt(self, job: WebhookJob) -> None:
        failure = self._post(job)
        attempt = job.attempts + 1
        url = _safe_url(job.url)
        if failure is None:
            self._forget(job)
            log.info("webhook to %s delivered (%s)", url, _ids(job.payload))
            self._tell(replace(job, attempts=attempt, last_error=None), "delivered")
            return
        retryable, reason = failure
        now = self._clock()
        s = self._settings
        age = now - job.created_at
        limit = f"/{s.max_attempts}" if s.max_attempts else ""
        updated = replace(job, attempts=attempt, last_error=reason,
                          next_attempt_at=now + self._backoff(attempt))
        out_of_time = age >= s.retry_hours * 3600
        out_of_attempts = bool(s.max_attempts) and attempt >= s.max_attempts
        if retryable and not (out_of_time or out_of_attempts):
            self._keep(updated)
            self._tell(updated, "retrying")
            log.warning("webhook to %s attempt %d%s failed: %s (retrying for %.1f h more)",
                        url, attempt, limit, reason, max(0.0, s.retry_hours - age / 3600))
            return
        log.warning("webhook to %s attempt %d%s failed: %s", url, attempt, limit, reason)
        self._fail(updated, now, "permanent failure" if not retryable else
                   f"no success in {age / 3600:.1f} h" if out_of_time else
                   f"{attempt} attempts made")

    def _tell(self, job: WebhookJob, outcome: str) -> None:
        """Each attempt's outcome to the metrics, and a registry delivery's to its log."""
        self._report({"retrying": "failed", "failed": "dropped"}.get(outcome, outcome))
        if self.on_outcome is None or job.webhook_id is None:
            return
        try:
            self.on_outcome(job, outcome)
        except Exception:  # the delivery log is a view; delivery itself goes on
            log.exception("recording the outcome of webhook job %s failed", job.job_id)

    def _keep(self, job: WebhookJob) -> None:
        with self._wake:
            if job.job_id in self._unsaved:
                self._unsaved[job.job_id] = job
                return
        self._store.update(TABLE, "job_id", job.job_id,
                           {"attempts": job.attempts, "last_error": job.last_error,
                            "next_attempt_at": job.next_attempt_at})

    def _forget(self, job: WebhookJob) -> None:
        with self._wake:
            if self._unsaved.pop(job.job_id, None) is not None:
                return
        self._store.remove(TABLE, "job_id", job.job_id)

    def _fail(self, job: WebhookJob, now: float, why: str) -> None:
        """Keep a delivery that failed for good where the API lists it, then drop the job."""
        self._failed.insert(FAILED_TABLE, {**job.to_doc(), "failed_at": now})
        self._forget(job)
        self._tell(job, "failed")
        log.error("webhook to %s failed for good after %d attempt(s), %s: %s (%s); kept in "
                  "GET /v1/webhooks/deliveries?status=failed", _safe_url(job.url),
                  job.attempts, why, job.last_error, _ids(job.payload))
        failed = self._failed.all(FAILED_TABLE)
        excess = len(failed) - self._settings.keep_failed
        if excess > 0:
            oldest = sorted(failed, key=lambda d: d.get("failed_at", 0))[:excess]
            self._failed.remove_many(FAILED_TABLE, "job_id", [d["job_id"] for d in oldest])
            log.warning("removed the %d oldest failed webhook deliveries (more than "
                        "webhooks.keep_failed = %d)", excess, self._settings.keep_failed)

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
        body = json.dumps(job.payload, allow_nan=False).encode("utf-8")
        headers = {
            **job.headers,
            "Content-Type": "application/json",
            "User-Agent": f"sipassist/{__version__}",
            "X-Sipassist-Job-Id": job.job_id,
        }
        if job.secret:
            headers["X-Sipassist-Signature"] = signature(job.secret, body)
        request = urllib.request.Request(job.url, data=body, method="POST", headers=headers)
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
