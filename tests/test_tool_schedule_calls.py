"""Tools and schedules that ring the test phone (one daemon per test: JACK2's client library
does not take two servers in one process at once, so no module-wide daemon runs beside these)."""

from __future__ import annotations

import pytest

from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED

pytestmark = [pytest.mark.telephony, pytest.mark.models]


def test_tool_call_rings_with_prefix_result_suffix(start_daemon, phone, webhook, synthesizer):
    from .audio_helpers import heard_audio

    daemon = start_daemon(phone)
    status, body = daemon.request("POST", "/tools/CALC/call", {
        "extension": "phone", "params": {"expression": "25 * 4 + 10"},
        "prefix": "Good morning! Here is your sum.", "suffix": "Have a great day!",
        "callback_url": webhook.url})
    assert status == 200, body
    assert body["status"] == "initiated" and body["tool_success"] is True
    assert body["tool_message"] == "The result is 110"
    assert body["message"] == "Calling phone with CALC result"
    assert webhook.wait(1, timeout=60)[0]["status"] == "completed"
    # Whisper mishears numbers on a phone line ("100 can"): check the very audio instead.
    spoken = synthesizer.synthesize("Good morning! Here is your sum. The result is 110 "
                                    "Have a great day!")
    assert heard_audio(phone.recording(), spoken, 16000) > 0.6


def test_delayed_schedule_rings_and_reports(start_daemon, phone, webhook):
    daemon = start_daemon(phone)
    status, body = daemon.request("POST", "/schedule", {
        "extension": "phone", "message": "This is your scheduled reminder.",
        "delay_seconds": 1, "callback_url": webhook.url})
    assert status == 200, body
    phone.wait_event(CALL_ESTABLISHED, timeout=30)
    payload = webhook.wait(1, timeout=60)[0]
    assert set(payload) == {"schedule_id", "status", "extension", "tool", "recurring",
                            "timestamp"}
    assert payload["schedule_id"] == body["schedule_id"] and payload["status"] == "completed"
    assert payload["extension"] == "phone" and payload["timestamp"].endswith("Z")
    one = daemon.request("GET", f"/schedule/{body['schedule_id']}")[1]
    assert one["status"] == "completed"


def test_schedule_survives_restart_and_fires(start_daemon, phone, webhook, tmp_path):
    first = start_daemon(phone, state=tmp_path)
    status, body = first.request("POST", "/schedule", {
        "extension": "phone", "message": "Still here after a restart.", "delay_seconds": 4,
        "callback_url": webhook.url})
    assert status == 200
    first.stop()
    second = start_daemon(phone, state=tmp_path)
    listed = [i["schedule_id"] for i in second.request("GET", "/schedule")[1]]
    assert body["schedule_id"] in listed
    phone.wait_event(CALL_ESTABLISHED, timeout=30)
    assert webhook.wait(1, timeout=60)[0]["status"] == "completed"


def test_timer_calls_back(start_daemon, phone, webhook):
    daemon = start_daemon(phone)
    status, body = daemon.request("POST", "/tools/SET_TIMER/execute", {
        "params": {"duration": 1, "message": "Your tea is ready.", "extension": "phone"}})
    assert status == 200, body
    assert body["success"] is True and body["message"] == "Timer set for 1 second."
    assert daemon.request("GET", f"/schedule/{body['data']['schedule_id']}")[0] == 200
    phone.wait_event(CALL_ESTABLISHED, timeout=30)
    phone.wait_event(CALL_CLOSED, timeout=30)
