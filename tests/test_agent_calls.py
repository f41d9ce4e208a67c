"""Agents on the phone: a call to an agent's own line is greeted and answered by that agent,
from its knowledge table; another agent whose table does not hold the fact says so."""

from __future__ import annotations

import pytest

from sipassist.agents.grounding import DONT_KNOW
from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED

from .audio_helpers import heard_audio
from .test_conversation import RATE, speech_track

pytestmark = [pytest.mark.telephony, pytest.mark.models]

CLINIC = [
    "We are open Monday to Thursday from 8 am to 6 pm, and on Fridays until 5 pm.",
    "Appointments cancelled less than 24 hours ahead are charged a fee of 30 dollars.",
    "Free parking is available in the lot behind the building.",
    "Dr. Patel and Dr. Moreno see children under twelve.",
]
BAKERY = [
    "Our sourdough bread is baked fresh every morning at six.",
    "We make birthday cakes to order with three days' notice.",
]
QUESTION = "What happens if I cancel my appointment late?"


def call_line(daemon, phone, line: str) -> dict:
    """Dial sip:<line>@daemon and return the call's record once it has ended."""
    before = {call["call_id"] for call in daemon.request("GET", "/calls?direction=inbound")[1]}
    phone.command("dial", f"sip:{line}@{daemon.settings.sip.listen}")
    phone.wait_event(CALL_ESTABLISHED)
    phone.wait_event(CALL_CLOSED, timeout=90)
    assert daemon.daemon.queue.wait_idle(timeout=30)
    calls = daemon.request("GET", "/calls?direction=inbound")[1]
    new = [call["call_id"] for call in calls if call["call_id"] not in before]
    assert len(new) == 1, calls
    return daemon.request("GET", f"/call/{new[0]}")[1]


def answers(record: dict) -> list[str]:
    return [turn["text"] for turn in record["transcript"] if turn["who"] == "assistant"]


def test_an_agent_line_greets_and_answers_from_its_knowledge(start_daemon, phone, synthesizer):
    daemon = start_daemon(phone)
    for table, rows in (("clinic", CLINIC), ("bakery", BAKERY)):
        assert daemon.request("POST", "/v1/knowledge", {"name": table})[0] == 201
        status, added = daemon.request("POST", f"/v1/knowledge/{table}/rows",
                                       {"rows": [{"content": row} for row in rows]})
        assert status == 201, added
    greeting = "Riverside Clinic, this is Anna. How can I help?"
    status, agent = daemon.request("POST", "/v1/agents", {
        "id": "reception", "name": "Reception", "lines": ["reception"],
        "persona": {"greeting": greeting, "farewell": "Thank you for calling."},
        "knowledge": ["clinic"], "tools": ["DATETIME"]})
    assert status == 201, agent
    status, agent = daemon.request("POST", "/v1/agents", {
        "id": "bakery", "lines": ["bakery"], "persona": {"greeting": "Corner Bakery, hello."},
        "knowledge": ["bakery"], "tools": []})
    assert status == 201, agent

    phone.set_speech(speech_track(synthesizer, [5.0, QUESTION, 8.0, "Goodbye.", 3.0]), RATE)
    record = call_line(daemon, phone, "reception")
    said = answers(record)
    assert said[0] == greeting and said[-1] == "Thank you for calling.", record["transcript"]
    # The reply holds the fact of the clinic's row, and the phone heard that very audio.
    reply = next((text for text in said[1:-1] if "24 hours" in text), None)
    assert reply is not None and "30 dollars" in reply, record["transcript"]
    recording = phone.recording()
    assert heard_audio(recording, synthesizer.synthesize(greeting), RATE) > 0.6
    assert heard_audio(recording, synthesizer.synthesize(reply), RATE) > 0.6

    # The bakery's agent, on its own line, has no such row: it says it does not know.
    phone.set_speech(speech_track(synthesizer, [4.0, QUESTION, 7.0, "Goodbye.", 3.0]), RATE)
    record = call_line(daemon, phone, "bakery")
    said = answers(record)
    assert said[0] == "Corner Bakery, hello." and DONT_KNOW in said, record["transcript"]
    assert not any("24 hours" in text for text in said), record["transcript"]
    assert heard_audio(phone.recording(), synthesizer.synthesize(DONT_KNOW), RATE) > 0.6
