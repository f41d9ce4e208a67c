"""Outbound calls end to end: the daemon (jackd, baresip, Piper) calls the test phone."""

from __future__ import annotations

import pytest

from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED, CALL_INCOMING

from .audio_helpers import heard_audio

pytestmark = [pytest.mark.telephony, pytest.mark.models]

MESSAGE = "Hello! This is a reminder about your dentist appointment tomorrow at two."


def assert_heard(synthesizer, phone, text: str) -> None:
    """The phone heard the very audio of `text` (Whisper's words vary on a phone line:
    "your dentist" came back as "eagentist")."""
    assert heard_audio(phone.recording(), synthesizer.synthesize(text), 16000) > 0.6


def test_answered_call_speaks_the_message(start_daemon, phone, webhook, synthesizer):
    daemon = start_daemon(phone, calls={"machine_detection": True})  # as installed
    status, body = daemon.request("POST", "/call", {
        "message": MESSAGE, "extension": "phone", "callback_url": webhook.url})
    assert status == 200
    assert body["status"] == "queued" and body["message"] == "Call initiated"
    assert body["queue_position"] is None
    call_id = body["call_id"]
    assert call_id.startswith("out-")

    phone.wait_event(CALL_ESTABLISHED)
    phone.wait_event(CALL_CLOSED, timeout=60)
    payload = webhook.wait()[0]
    assert payload == {
        "call_id": call_id, "status": "completed", "extension": "phone",
        "duration_seconds": payload["duration_seconds"], "message_played": True,
        "choice_response": None, "choice_raw_text": None, "error": None,
        "answered_by": "unknown",  # the phone answered and said nothing
    }
    assert payload["duration_seconds"] > 2

    status, record = daemon.request("GET", f"/call/{call_id}")
    assert status == 200
    assert set(record) == {"call_id", "status", "queued_at", "started_at", "completed_at",
                           "duration_seconds", "choice_response", "choice_raw_text", "error",
                           "direction", "extension", "transcript", "thread_id",
                           "answered_by"}
    assert record["status"] == "completed"
    assert record["queued_at"] <= record["started_at"] <= record["completed_at"]
    assert record["queued_at"].endswith("Z")
    assert isinstance(record["duration_seconds"], int)

    assert_heard(synthesizer, phone, MESSAGE)

    status, queue = daemon.request("GET", "/queue")
    assert queue == {"enabled": True, "pending": 0, "active": 0, "max_concurrent": 1,
                     "total_processed": 1}
    status, health = daemon.request("GET", "/health")
    assert health == {"status": "healthy", "sip_registered": True, "active_calls": 0}


def test_unanswered_call_is_no_answer(start_daemon, manual_phone, webhook):
    daemon = start_daemon(manual_phone)
    status, body = daemon.request("POST", "/call", {
        "message": "Nobody will hear this.", "extension": "phone", "ring_timeout": 2,
        "callback_url": webhook.url})
    assert status == 200
    manual_phone.wait_event(CALL_INCOMING)
    manual_phone.wait_event(CALL_CLOSED)
    payload = webhook.wait()[0]
    assert payload["status"] == "no_answer"
    assert payload["message_played"] is False
    assert daemon.request("GET", f"/call/{body['call_id']}")[1]["status"] == "no_answer"


def test_rejected_call_is_busy(start_daemon, manual_phone, webhook):
    daemon = start_daemon(manual_phone)
    daemon.request("POST", "/call", {"message": "Rejected.", "extension": "phone",
                                     "callback_url": webhook.url})
    manual_phone.wait_event(CALL_INCOMING)
    manual_phone.command("hangup")  # before answer: 486 Busy Here
    payload = webhook.wait()[0]
    assert payload["status"] == "busy", payload
    assert payload["error"] is None


def test_calls_run_one_after_another(start_daemon, phone, webhook):
    daemon = start_daemon(phone)
    first = daemon.request("POST", "/call", {"message": "First call.", "extension": "phone",
                                             "callback_url": webhook.url})[1]
    second = daemon.request("POST", "/call", {"message": "Second call.", "extension": "phone",
                                              "callback_url": webhook.url, "call_id": "second"})[1]
    third = daemon.request("POST", "/call", {"message": "Third call.", "extension": "phone",
                                             "callback_url": webhook.url})[1]
    assert first["queue_position"] is None
    assert second["queue_position"] == 1 and second["call_id"] == "second"
    assert third["queue_position"] == 2
    queue = daemon.request("GET", "/queue")[1]
    assert queue["pending"] + queue["active"] == 3 and queue["active"] <= 1

    payloads = webhook.wait(3, timeout=120)
    assert [p["call_id"] for p in payloads] == [first["call_id"], "second", third["call_id"]]
    assert all(p["status"] == "completed" for p in payloads), payloads
    records = [daemon.request("GET", f"/call/{p['call_id']}")[1] for p in payloads]
    for earlier, later in zip(records, records[1:]):
        assert earlier["completed_at"] <= later["started_at"]


def test_queued_calls_survive_a_restart(start_daemon, tmp_path, manual_phone, webhook):
    """Stop the daemon while one call rings and two wait; after a start they are placed."""
    phone = manual_phone
    first = start_daemon(phone)
    ringing = first.request("POST", "/call", {"message": "Interrupted.", "extension": "phone",
                                              "callback_url": webhook.url})[1]
    waiting = [first.request("POST", "/call", {"message": f"Queued call {n}.",
                                               "extension": "phone",
                                               "callback_url": webhook.url})[1]
               for n in (1, 2)]
    phone.wait_event(CALL_INCOMING)
    first.stop()

    interrupted = webhook.wait(1)[0]
    assert interrupted["call_id"] == ringing["call_id"]
    assert interrupted["status"] == "failed" and interrupted["error"]

    phone.command("answermode", "auto")
    second = start_daemon(phone, state=tmp_path)
    payloads = webhook.wait(3, timeout=120)
    assert [p["call_id"] for p in payloads[1:]] == [w["call_id"] for w in waiting]
    assert all(p["status"] == "completed" for p in payloads[1:]), payloads
    status, record = second.request("GET", f"/call/{ringing['call_id']}")
    assert status == 200 and record["status"] == "failed"
    assert second.request("GET", "/queue")[1]["total_processed"] == 3


def test_baresip_killed_mid_call_recovers(start_daemon, phone, webhook):
    daemon = start_daemon(phone)
    long_message = "This message is long enough to still be playing when baresip dies. " * 3
    daemon.request("POST", "/call", {"message": long_message, "extension": "phone",
                                     "callback_url": webhook.url})
    phone.wait_event(CALL_ESTABLISHED)
    old_pid = daemon.daemon.switchboard.baresip.pid
    daemon.daemon.switchboard.baresip.kill()

    failed = webhook.wait(1)[0]
    assert failed["status"] == "failed"
    assert "baresip" in failed["error"]

    # The next call waits in the queue until baresip is back, then goes through.
    status, body = daemon.request("POST", "/call", {"message": "Back again.", "extension": "phone",
                                                    "callback_url": webhook.url})
    assert status == 200
    second = webhook.wait(2, timeout=60)[1]
    assert second["call_id"] == body["call_id"]
    assert second["status"] == "completed", second
    assert daemon.daemon.switchboard.baresip.pid not in (None, old_pid)
    assert daemon.daemon.switchboard.baresip.restarts == 1


def test_webhook_delivered_after_receiver_comes_up(start_daemon, phone, webhook):
    from .conftest import WebhookReceiver, free_tcp_port

    port = free_tcp_port()  # nothing listens here yet
    daemon = start_daemon(phone)
    status, body = daemon.request("POST", "/call", {
        "message": "Webhook later.", "extension": "phone",
        "callback_url": f"http://127.0.0.1:{port}/hook"})
    # The next call is not held up by the undeliverable webhook of the first.
    daemon.request("POST", "/call", {"message": "Next call.", "extension": "phone",
                                     "callback_url": webhook.url})
    assert webhook.wait(1, timeout=60)[0]["status"] == "completed"
    waiting = daemon.daemon.webhooks_store.all("webhooks")
    assert body["call_id"] in [job["payload"]["call_id"] for job in waiting]
    receiver = WebhookReceiver(port)
    try:
        payload = receiver.wait(1, timeout=30)[0]
        assert payload["call_id"] == body["call_id"]
        assert payload["status"] == "completed"
    finally:
        receiver.stop()


def test_jackd_killed_recovers(start_daemon, phone, webhook):
    daemon = start_daemon(phone)
    board = daemon.daemon.switchboard
    board.jackd.kill()
    # A call placed now waits until jackd, the bridge and baresip are back, then goes through.
    status, body = daemon.request("POST", "/call", {"message": "The audio server is back.",
                                                    "extension": "phone",
                                                    "callback_url": webhook.url})
    assert status == 200
    payload = webhook.wait(1, timeout=60)[0]
    assert payload["status"] == "completed", payload
    assert board.jackd.restarts == 1
