"""The webhook registry (seed 000): subscriptions, signed events, deliveries across restarts."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED

from .conftest import WebhookReceiver, free_tcp_port

SECRET = "test-secret-0123456789"
pytestmark = [pytest.mark.telephony, pytest.mark.models]

WAIT = 60.0


def verify(receiver: WebhookReceiver, index: int, secret: str = SECRET) -> dict:
    """The index-th delivery, after checking its signature and event header."""
    raw, headers = receiver.raw[index], {k.lower(): v for k, v in receiver.headers[index].items()}
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-sipassist-signature"], expected)
    body = json.loads(raw)
    assert headers["x-sipassist-event"] == body["event"]
    assert set(body) == {"id", "event", "created_at", "data"}
    return body


def wait_for_event(receiver: WebhookReceiver, event: str, timeout: float = WAIT,
                   where=lambda data: True) -> int:
    """The index of the first delivery of `event` (whose data passes `where`), waiting."""
    deadline = time.monotonic() + timeout
    count = 1
    while time.monotonic() < deadline:
        bodies = receiver.wait(count, max(0.1, deadline - time.monotonic()))
        for i, body in enumerate(bodies):
            if body["event"] == event and where(body["data"]):
                return i
        count = len(bodies) + 1
    raise AssertionError(f"no {event} delivery within {timeout} s")


def wait_delivered(daemon, webhook_id: str, job_id: str, timeout: float = WAIT) -> dict:
    """The delivery log entry once it says delivered (the sender reports after the 2xx)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = daemon.request("GET", f"/v1/webhooks/{webhook_id}/deliveries")
        entry = next(d for d in body["deliveries"] if d["job_id"] == job_id)
        if entry["status"] == "delivered":
            return entry
        time.sleep(0.05)  # polling a status the API has no event for
    raise AssertionError(f"delivery {job_id} still {entry['status']}")


def test_registry_signs_call_events_and_refuses_bad_input(start_daemon, phone, webhook):
    daemon = start_daemon(phone)
    status, hook = daemon.request("POST", "/v1/webhooks", {
        "url": webhook.url, "events": ["call.incoming", "call.answered", "call.completed",
                                   "schedule.fired", "schedule.completed"],
        "secret": SECRET})
    assert status == 201, hook
    assert hook["secret"] == SECRET and hook["active"] is True
    hook_id = hook["id"]

    # Bad input: each a 400 that says what to fix, a 404 for an unknown id; nothing stored.
    status, body = daemon.request("POST", "/v1/webhooks", {"url": "ftp://x", "events":
                                                             ["call.completed"]})
    assert status == 400 and "url must be an http:// or https:// URL" in body["detail"]
    status, body = daemon.request("POST", "/v1/webhooks", {"url": webhook.url,
                                                           "events": ["call.done"]})
    assert status == 400 and "'call.done'" in body["detail"]
    assert "text.received" in body["detail"] and "schedule.fired" in body["detail"]
    status, body = daemon.request("PATCH", f"/v1/webhooks/{hook_id}", {"events": ["nope"]})
    assert status == 400, body
    for method, path in (("GET", "/v1/webhooks/wh_missing"),
                         ("DELETE", "/v1/webhooks/wh_missing"),
                         ("POST", "/v1/webhooks/wh_missing/test"),
                         ("GET", "/v1/webhooks/wh_missing/deliveries")):
        status, body = daemon.request(method, path)
        assert status == 404, (method, path, body)
    status, listing = daemon.request("GET", "/v1/webhooks")
    assert listing["count"] == 1 and "secret" not in listing["webhooks"][0]

    # A call the test places: the receiver gets call.answered and call.completed, signed.
    status, queued = daemon.request("POST", "/call", {"message": "Hello there.",
                                                      "extension": "phone"})
    assert status == 200, queued
    body = verify(webhook, wait_for_event(webhook, "call.completed"))
    assert body["data"]["call_id"] == queued["call_id"]
    assert body["data"]["status"] == "completed" and body["data"]["message_played"] is True
    answered = [b for b in webhook.bodies if b["event"] == "call.answered"]
    assert [b["data"]["call_id"] for b in answered] == [queued["call_id"]]

    # A call to the assistant: call.incoming, call.answered, then call.completed (inbound).
    phone.command("dial", daemon.sip_uri)
    phone.wait_event(CALL_ESTABLISHED, timeout=10)
    wait_for_event(webhook, "call.answered", where=lambda data: "from" in data)  # the daemon's
    phone.command("hangup")
    phone.wait_event(CALL_CLOSED)
    index = wait_for_event(webhook, "call.completed",
                           where=lambda data: data["direction"] == "inbound")
    inbound_id = verify(webhook, index)["data"]["call_id"]
    events = [b["event"] for b in webhook.bodies if b["data"].get("call_id") == inbound_id]
    assert events == ["call.incoming", "call.answered", "call.completed"]

    # A schedule: schedule.fired when its call is placed, schedule.completed when it ends.
    status, schedule = daemon.request("POST", "/schedule", {
        "extension": "phone", "message": "Your reminder.", "delay_seconds": 1})
    assert status == 200, schedule
    sid = schedule["schedule_id"]
    done = verify(webhook, wait_for_event(webhook, "schedule.completed",
                                          where=lambda data: data["schedule_id"] == sid))
    assert done["data"]["status"] == "completed"
    fired = [b["data"] for b in webhook.bodies if b["event"] == "schedule.fired"]
    assert [d["schedule_id"] for d in fired] == [sid]

    # The ping goes out signed too, and the deliveries list shows it delivered.
    status, ping = daemon.request("POST", f"/v1/webhooks/{hook_id}/test")
    assert status == 202 and ping["event"] == "ping"
    entry = wait_delivered(daemon, hook_id, ping["job_id"])
    assert entry["attempts"] == 1
    index = next(i for i, b in enumerate(webhook.bodies) if b["id"] == ping["event_id"])
    assert verify(webhook, index)["event"] == "ping"

    # Inactive: events stop; the new secret is shown once; deleting forgets it.
    status, patched = daemon.request("PATCH", f"/v1/webhooks/{hook_id}", {"active": False})
    assert status == 200 and patched["active"] is False and "secret" not in patched
    status, _ = daemon.request("DELETE", f"/v1/webhooks/{hook_id}")
    assert status == 200
    assert daemon.request("GET", f"/v1/webhooks/{hook_id}")[0] == 404


def test_deliveries_pending_at_a_restart_arrive_after_it(start_daemon, phone, tmp_path):
    port = free_tcp_port()  # nothing listens yet: the delivery is retried
    daemon = start_daemon(phone, state=tmp_path / "a")
    status, hook = daemon.request("POST", "/v1/webhooks", {
        "url": f"http://127.0.0.1:{port}/hook", "events": ["text.sent"], "secret": SECRET})
    assert status == 201
    status, ping = daemon.request("POST", f"/v1/webhooks/{hook['id']}/test")
    assert status == 202
    daemon.stop()

    receiver = WebhookReceiver(port)
    try:
        again = start_daemon(phone, state=tmp_path / "a")
        assert verify(receiver, wait_for_event(receiver, "ping"))["id"] == ping["event_id"]
        entry = wait_delivered(again, hook["id"], ping["job_id"])
        assert entry["event"] == "ping"
    finally:
        receiver.stop()


def test_a_collected_choice_is_published(start_daemon, phone, webhook, synthesizer):
    from .test_listening import CHOICE, MESSAGE, phone_says

    phone_says(phone, synthesizer, "Yeah, that works.")
    daemon = start_daemon(phone)
    status, _ = daemon.request("POST", "/v1/webhooks", {
        "url": webhook.url, "events": ["choice.collected"], "secret": SECRET})
    assert status == 201
    status, queued = daemon.request("POST", "/call", {"message": MESSAGE, "extension": "phone",
                                                      "choice": CHOICE})
    assert status == 200, queued
    body = verify(webhook, wait_for_event(webhook, "choice.collected", timeout=90))
    assert body["data"]["call_id"] == queued["call_id"]
    assert body["data"]["choice_response"] == "confirmed"
