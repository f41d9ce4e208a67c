"""Listening on calls: the test phone answers a choice by voice or keypad; /speak into a call."""

from __future__ import annotations

import numpy as np
import pytest

from sipassist.calls.runner import REPROMPT
from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED
from sipassist.voice.asr import normalise_words

from .audio_helpers import heard_at

pytestmark = [pytest.mark.telephony, pytest.mark.models, pytest.mark.heard]

MESSAGE = "Hello! Your appointment is tomorrow at two."
PROMPT = "Say yes to confirm or no to cancel."
CHOICE = {
    "prompt": PROMPT,
    "options": [
        {"value": "confirmed", "synonyms": ["yes", "yeah", "confirm"]},
        {"value": "cancelled", "synonyms": ["no", "nope", "cancel"]},
    ],
    "timeout_seconds": 3,
}


def phone_says(phone, synthesizer, answer: str | None) -> None:
    """The phone speaks `answer` once the daemon has played the message and the prompt."""
    played = [synthesizer.synthesize(MESSAGE), synthesizer.synthesize(PROMPT)]
    delay = 0.3 + sum(len(p) for p in played) / 16000 + 1.2
    speech = [np.zeros(int(delay * 16000), np.float32)]
    if answer:
        speech.append(synthesizer.synthesize(answer))
    phone.set_speech(np.concatenate(speech), 16000)


def place_choice_call(daemon, webhook) -> str:
    status, body = daemon.request("POST", "/call", {
        "message": MESSAGE, "extension": "phone", "callback_url": webhook.url,
        "choice": CHOICE})
    assert status == 200, body
    return body["call_id"]


@pytest.mark.parametrize(("answer", "value", "heard"), [
    ("Yeah, that works.", "confirmed", "work"),
    ("No, cancel it.", "cancelled", "cancel"),
])
def test_spoken_answer(start_daemon, phone, webhook, synthesizer, answer, value, heard):
    phone_says(phone, synthesizer, answer)
    daemon = start_daemon(phone)
    call_id = place_choice_call(daemon, webhook)
    payload = webhook.wait(1, timeout=90)[0]
    assert payload["status"] == "completed", payload
    assert payload["choice_response"] == value
    # Whisper may write "worked" for "works": the stem is what the phone said.
    assert any(w.startswith(heard) for w in normalise_words(payload["choice_raw_text"]))
    record = daemon.request("GET", f"/call/{call_id}")[1]
    assert record["choice_response"] == value
    assert record["choice_raw_text"] == payload["choice_raw_text"]


def test_silence_reprompts_then_gives_up(start_daemon, phone, webhook, synthesizer,
                                         transcriber):
    phone_says(phone, synthesizer, None)
    daemon = start_daemon(phone)
    place_choice_call(daemon, webhook)
    payload = webhook.wait(1, timeout=90)[0]
    assert payload["status"] == "completed"
    assert payload["choice_response"] is None and payload["choice_raw_text"] is None
    # The prompt was asked, then asked again after the apology: the very audio of both.
    first = heard_at(phone.recording(), synthesizer.synthesize(PROMPT), 16000)
    again = heard_at(phone.recording(), synthesizer.synthesize(f"{REPROMPT} {PROMPT}"), 16000)
    assert first[0] > 0.6 and again[0] > 0.6, (first, again)
    assert first[1] < again[1]


def test_keypad_answers_at_once(start_daemon, phone, webhook, synthesizer):
    phone_says(phone, synthesizer, None)
    daemon = start_daemon(phone)
    place_choice_call(daemon, webhook)
    phone.wait_event(CALL_ESTABLISHED)
    phone.command("sndcode", "2")
    payload = webhook.wait(1, timeout=90)[0]
    assert payload["choice_response"] == "cancelled"
    assert payload["choice_raw_text"] == "2"


def test_speak_into_a_live_call(start_daemon, phone, webhook, synthesizer):
    daemon = start_daemon(phone)
    message = "This is the first part of the message, which takes a few seconds to say."
    daemon.request("POST", "/call", {"message": message, "extension": "phone",
                                     "callback_url": webhook.url})
    phone.wait_event(CALL_ESTABLISHED)
    status, body = daemon.request(
        "POST", "/speak?message=Attention:%20severe%20weather%20warning%20for%20Storm%20Lake.")
    assert (status, body) == (200, {"success": True, "message": "Message spoken to call"})
    phone.wait_event(CALL_CLOSED)
    assert webhook.wait(1)[0]["status"] == "completed"

    # The injected speech reached the phone, after the original message, not over it (the
    # very audio is compared: Whisper's words for it vary on a phone line).
    original = heard_at(phone.recording(), synthesizer.synthesize(message), 16000)
    spoken = heard_at(phone.recording(), synthesizer.synthesize(
        "Attention: severe weather warning for Storm Lake."), 16000)
    assert original[0] > 0.6 and spoken[0] > 0.6, (original, spoken)
    assert spoken[1] >= original[1] + len(synthesizer.synthesize(message)) / 16000 - 0.1
    # Once the call is over, the same call_id is known but no longer live.
    call_id = webhook.bodies[0]["call_id"]
    status, body = daemon.request("POST", f"/speak?message=late&call_id={call_id}")
    assert status == 409 and call_id in body["detail"]


def test_our_echo_is_not_taken_for_the_answer(start_daemon, ports, tmp_path, webhook):
    """The phone sends back all it hears: the echo of "... or no to cancel" must not answer."""
    echo_phone = ports.phone(tmp_path / "echo", echo=True)
    try:
        daemon = start_daemon(echo_phone)
        place_choice_call(daemon, webhook)
        payload = webhook.wait(1, timeout=90)[0]
    finally:
        echo_phone.stop()
    assert payload["status"] == "completed", payload
    assert payload["choice_response"] is None and payload["choice_raw_text"] is None, payload
