"""Outbound calls that reach an answering machine, a person, or silence: real baresip phones.

The phone's microphone is a WAV (aufile): a recorded greeting and a beep, a short "Hello?",
or nothing. What it heard is in its recording, where the message is found by correlation.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from sipassist.calls.runner import MACHINE_CHOICE_ERROR
from sipassist.telephony.events import CALL_CLOSED
from sipassist.voice.answering import SILENT_ANSWER_SECONDS

from .audio_helpers import heard_at, heard_audio, match
from .test_webhook_registry import SECRET, verify, wait_for_event

pytestmark = [pytest.mark.telephony, pytest.mark.models]

RATE = 16000
GREETING = ("Hi, this is Sam. I can't take your call right now. "
            "Please leave a message after the tone.")
MESSAGE = "Hello, this is the front desk. Your parcel has arrived and is waiting for you."
# As installed: detection on, and the default pause before the hangup (the tests' 0.3 s cut
# the message's last words on the phone once, on a loaded machine).
DETECTION = {"machine_detection": True, "hangup_pause_seconds": 0.8}
CHOICE = {"prompt": "Say yes to confirm or no to cancel.",
          "options": [{"value": "yes"}, {"value": "no"}], "timeout_seconds": 3}


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def beep(seconds: float = 0.5, hz: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def call(daemon, webhook, **more) -> dict:
    """Place a call to the phone; its per-call webhook once it has ended."""
    status, body = daemon.request("POST", "/v1/calls", {
        "to": "phone", "message": MESSAGE, "callback_url": webhook.url, **more})
    assert status == 201, body
    deadline = time.monotonic() + 90
    count = len(webhook.bodies) + 1
    while time.monotonic() < deadline:  # registry events go to the same receiver
        bodies = webhook.wait(count, max(0.1, deadline - time.monotonic()))
        for payload in bodies:
            if payload.get("call_id") == body["call_id"]:
                return payload
        count = len(bodies) + 1
    raise AssertionError(f"no webhook for {body['call_id']}: {webhook.bodies}")


def message_at(phone, synthesizer) -> float:
    """When the message started, in seconds from the start of the phone's audio (its
    microphone WAV), found by correlation in what it heard.

    The phone's two recordings end together (at the hangup), but the heard one starts only
    when the daemon's first packet arrives: its positions are moved onto the sent one's clock.
    """
    from sipassist.voice.asr import read_wav

    heard = phone.recording()
    message = synthesizer.synthesize(MESSAGE)
    # Heard: matched in pieces (a dropout on a loaded machine shifts all after it); where:
    # its first second.
    score = heard_audio(heard, message, RATE)
    first, at = heard_at(heard, message[:RATE], RATE)
    assert score > 0.6 and first > 0.6, \
        f"the phone did not hear the message (pieces {score:.2f}, start {first:.2f} at {at:.2f} s)"
    sent, rate = read_wav(sent_recording(phone))
    return at + (len(sent) - len(read_wav(heard)[0])) / rate


def sent_recording(phone):
    heard = phone.recording()
    return heard.with_name(heard.name.replace("-dec", "-enc"))


def beep_and_message(phone, tone: np.ndarray, synthesizer) -> tuple[float, float]:
    """(end of the beep the phone sent, start of the message it heard), in seconds from the
    start of its audio; the beep found by correlation in what it sent."""
    from sipassist.voice.asr import read_wav
    from sipassist.voice.resample import resample

    sent, rate = read_wav(sent_recording(phone))
    # A faint noise floor: in digital silence a normalised correlation is 0/0.
    floor = 1e-4 * np.random.default_rng(0).standard_normal(len(sent)).astype(np.float32)
    score, offset = match(sent + floor, resample(tone, RATE, rate))
    assert score > 0.8, f"the beep is not in what the phone sent ({score:.2f})"
    return offset / rate + len(tone) / RATE, message_at(phone, synthesizer)


def test_a_machine_gets_the_message_after_its_beep(start_daemon, phone, webhook, synthesizer):
    greeting = synthesizer.synthesize(GREETING)
    assert 5.0 < len(greeting) / RATE < 7.5  # a greeting of about 6 s
    lead, gap = silence(0.3), silence(0.4)
    tone = beep()
    beep_end = (len(lead) + len(greeting) + len(gap) + len(tone)) / RATE
    phone.set_speech(np.concatenate([lead, greeting, gap, tone]), RATE)
    daemon = start_daemon(phone, calls=DETECTION)
    status, _ = daemon.request("POST", "/v1/webhooks", {
        "url": webhook.url, "events": ["call.answered"], "secret": SECRET})
    assert status == 201

    payload = call(daemon, webhook)
    assert payload["answered_by"] == "machine", payload
    assert payload["status"] == "completed" and payload["message_played"], payload
    answered = verify(webhook, wait_for_event(webhook, "call.answered"))
    assert answered["data"]["answered_by"] == "machine", answered
    for path in (f"/v1/calls/{payload['call_id']}", f"/call/{payload['call_id']}"):
        assert daemon.request("GET", path)[1]["answered_by"] == "machine"

    # Where the beep is in what the phone sent, and where the message is in what it heard.
    beep_at, start = beep_and_message(phone, tone, synthesizer)
    print(f"beep ends at {beep_at:.2f} s, the message starts at {start:.2f} s")
    assert abs(beep_at - beep_end) < 0.5, (beep_at, beep_end)
    assert beep_at <= start <= beep_at + 1.5, (beep_at, start)

    # A choice call to the machine: the message is left, no question; it ends no_answer.
    payload = call(daemon, webhook, choice=CHOICE)
    assert payload["status"] == "no_answer" and payload["answered_by"] == "machine", payload
    assert payload["error"] == MACHINE_CHOICE_ERROR and payload["message_played"], payload
    assert payload["choice_response"] is None
    beep_at, start = beep_and_message(phone, tone, synthesizer)
    assert beep_at <= start, (beep_at, start)
    prompt, _ = heard_at(phone.recording(), synthesizer.synthesize(CHOICE["prompt"]), RATE)
    assert prompt < 0.4, f"the machine was asked the question (match {prompt:.2f})"


def test_a_person_gets_it_at_once_and_silence_after_a_short_wait(start_daemon, phone, webhook,
                                                                 synthesizer):
    hello = synthesizer.synthesize("Hello?")
    lead = silence(0.4)
    phone.set_speech(np.concatenate([lead, hello]), RATE)
    daemon = start_daemon(phone, calls=DETECTION)
    payload = call(daemon, webhook)
    assert payload["answered_by"] == "human" and payload["status"] == "completed", payload
    hello_end = (len(lead) + len(hello)) / RATE
    start = message_at(phone, synthesizer)
    print(f"'Hello?' ends at {hello_end:.2f} s, the message starts at {start:.2f} s")
    # After the pause that ends "Hello?" (HUMAN_PAUSE_SECONDS), not after a greeting's worth.
    assert hello_end < start < hello_end + 1.6, (hello_end, start)

    # Picked up, nothing said: the message after about 2 s all the same.
    phone.set_speech(silence(0.1), RATE)
    payload = call(daemon, webhook)
    assert payload["answered_by"] == "unknown" and payload["message_played"], payload
    start = message_at(phone, synthesizer)
    print(f"silent answer: the message starts at {start:.2f} s")
    assert SILENT_ANSWER_SECONDS < start < SILENT_ANSWER_SECONDS + 1.5, start
    phone.wait_event(CALL_CLOSED, timeout=10)
