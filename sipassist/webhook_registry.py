"""Registered webhooks (seed 000): which URL gets which events, signed with whose secret.

Subscriptions live in their own state file, written atomically (store.py). `publish` turns an
event into one delivery per active subscriber, `{"id", "event", "created_at", "data"}`, handed
to the WebhookSender, which retries it across restarts; the sender reports each outcome back
here, so `GET /v1/webhooks/{id}/deliveries` shows the last ones with their status.
"""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .events import EVENTS, PING
from .store import Store
from .webhooks import WebhookJob, WebhookSender

log = logging.getLogger(__name__)

HOOKS = "hooks"
LOG = "deliveries"
KEEP_DELIVERIES = 50  # per webhook, newest kept


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


class UnknownWebhook(KeyError):
    pass


class WebhookRegistry:
    def __init__(self, store: Store, sender: WebhookSender,
                 clock: Callable[[], str] = _now) -> None:
        self._store = store
        self._sender = sender
        self._clock = clock
        self._lock = threading.Lock()  # a log entry's read-modify-write
        sender.on_outcome = self._outcome

    # -- subscriptions --------------------------------------------------------------------------

    def create(self, url: str, events: list[str], secret: str | None, active: bool
               ) -> dict[str, Any]:
        now = self._clock()
        doc = {"id": "wh_" + uuid.uuid4().hex[:16], "url": url, "events": list(events),
               "secret": secret or new_secret(), "active": active,
               "created_at": now, "updated_at": now}
        self._store.insert(HOOKS, doc)
        return doc

    def all(self) -> list[dict[str, Any]]:
        return sorted(self._store.all(HOOKS), key=lambda d: d["created_at"])

    def get(self, webhook_id: str) -> dict[str, Any]:
        doc = self._store.get(HOOKS, "id", webhook_id)
        if doc is None:
            raise UnknownWebhook(webhook_id)
        return doc

    def update(self, webhook_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        self.get(webhook_id)
        if not self._store.update(HOOKS, "id", webhook_id,
                                  {**fields, "updated_at": self._clock()}):
            raise UnknownWebhook(webhook_id)
        return self.get(webhook_id)

    def delete(self, webhook_id: str) -> None:
        """Forget the subscription; deliveries already queued still go out."""
        if not self._store.remove(HOOKS, "id", webhook_id):
            raise UnknownWebhook(webhook_id)
        self._store.remove(LOG, "webhook_id", webhook_id)

    # -- events ---------------------------------------------------------------------------------

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Queue `event` to every active subscriber. Never raises: callers are call threads."""
        if event not in EVENTS:
            log.error("unknown event %r not published", event)
            return
        try:
            for hook in self._store.all(HOOKS):
                if hook.get("active") and event in hook.get("events", ()):
                    self._deliver(hook, event, data)
        except Exception:
            log.exception("publishing %s failed", event)

    def ping(self, webhook_id: str) -> dict[str, Any]:
        """A `ping` to one webhook (active or not), for POST /v1/webhooks/{id}/test."""
        return self._deliver(self.get(webhook_id), PING,
                             {"webhook_id": webhook_id, "message": "sipassist test delivery"})

    def _deliver(self, hook: dict[str, Any], event: str, data: dict[str, Any]
                 ) -> dict[str, Any]:
        now = self._clock()
        payload = {"id": "evt_" + uuid.uuid4().hex, "event": event, "created_at": now,
                   "data": data}
        # Under the lock: the sender may finish before the entry is written, and its outcome
        # (which takes the lock) must find the entry.
        with self._lock:
            job_id = self._sender.send(hook["url"], payload,
                                       headers={"X-Sipassist-Event": event},
                                       secret=hook.get("secret"), webhook_id=hook["id"])
            entry = {"job_id": job_id, "webhook_id": hook["id"], "event_id": payload["id"],
                     "event": event, "status": "pending", "attempts": 0, "last_error": None,
                     "created_at": now, "updated_at": now}
            self._store.insert(LOG, entry)
            self._trim(hook["id"])
        return entry

    def _trim(self, webhook_id: str) -> None:
        entries = self._store.search(LOG, lambda d: d.get("webhook_id") == webhook_id)
        excess = len(entries) - KEEP_DELIVERIES
        if excess > 0:
            oldest = sorted(entries, key=lambda d: d["created_at"])[:excess]
            self._store.remove_many(LOG, "job_id", [d["job_id"] for d in oldest])

    def _outcome(self, job: WebhookJob, outcome: str) -> None:
        status = "pending" if outcome == "retrying" else outcome
        with self._lock:
            self._store.update(LOG, "job_id", job.job_id,
                               {"status": status, "attempts": job.attempts,
                                "last_error": job.last_error, "updated_at": self._clock()})

    def deliveries(self, webhook_id: str, limit: int) -> list[dict[str, Any]]:
        """The webhook's last deliveries, newest first."""
        self.get(webhook_id)
        entries = self._store.search(LOG, lambda d: d.get("webhook_id") == webhook_id)
        entries.sort(key=lambda d: d["created_at"], reverse=True)
        return [{k: v for k, v in d.items() if k != "webhook_id"} for d in entries[:limit]]
