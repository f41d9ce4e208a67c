"""Agents on the phone: a call to an agent's own line is greeted and answered by that agent,
from its knowledge table; another agent whose table does not hold the fact says so."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from sipassist.agents.grounding import DONT_KNOW
from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED

from .audio_helpers import heard_audio
from .conftest import stop_process
from .test_conversation import RATE, speech_track
from .test_conversation import said as turns

pytestmark = [pytest.mark.telephony, pytest.mark.models, pytest.mark.heard]

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
SPEED = 1.25  # the reception agent's persona.speed


def call_line(daemon, phone, line: str, host: str = "") -> dict:
    """Dial sip:<line>@<host> (the daemon itself by default) and return the call's record
    once it has ended."""
    before = {call["call_id"] for call in daemon.request("GET", "/calls?direction=inbound")[1]}
    phone.command("dial", f"sip:{line}@{host or daemon.settings.sip.listen}")
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
        "persona": {"greeting": greeting, "farewell": "Thank you for calling.",
                    "speed": SPEED},
        "knowledge": ["clinic"], "tools": ["DATETIME"]})
    assert status == 201, agent
    status, agent = daemon.request("POST", "/v1/agents", {
        "id": "bakery", "lines": ["bakery"], "persona": {"greeting": "Corner Bakery, hello."},
        "knowledge": ["bakery"], "tools": []})
    assert status == 201, agent

    phone.set_speech(speech_track(synthesizer, [5.0, QUESTION, 8.0, "Goodbye.", 3.0]), RATE)
    record = call_line(daemon, phone, "reception")
    said = answers(record)
    assert said[0] == greeting and said[-1] == "Thank you for calling.", turns(record)
    # The reply holds the fact of the clinic's row, and the phone heard that very audio.
    reply = next((text for text in said[1:-1] if "24 hours" in text), None)
    assert reply is not None and "30 dollars" in reply, turns(record)
    recording = phone.recording()
    # Spoken at the persona's speed: that audio is heard, better than the voice's own pace.
    greeted = heard_audio(recording, synthesizer.synthesize(greeting, speed=SPEED), RATE)
    assert greeted > 0.6
    assert greeted > heard_audio(recording, synthesizer.synthesize(greeting), RATE) + 0.1
    assert heard_audio(recording, synthesizer.synthesize(reply, speed=SPEED), RATE) > 0.6

    # The bakery's agent, on its own line, has no such row: it says it does not know.
    phone.set_speech(speech_track(synthesizer, [4.0, QUESTION, 7.0, "Goodbye.", 3.0]), RATE)
    record = call_line(daemon, phone, "bakery")
    said = answers(record)
    assert said[0] == "Corner Bakery, hello." and DONT_KNOW in said, turns(record)
    assert not any("24 hours" in text for text in said), turns(record)
    assert heard_audio(phone.recording(), synthesizer.synthesize(DONT_KNOW), RATE) > 0.6

    # Calls to the agents' lines leave baresip's current account on the last line called; an
    # outbound call still comes from the box's own user, not from that line.
    status, queued = daemon.request("POST", "/call", {"message": "Your table is ready.",
                                                      "extension": "phone"})
    assert status == 200, queued
    answered = phone.wait_event(CALL_ESTABLISHED)
    phone.wait_event(CALL_CLOSED, timeout=60)
    assert daemon.daemon.queue.wait_idle(timeout=30)
    record = daemon.request("GET", f"/call/{queued['call_id']}")[1]
    assert record["status"] == "completed", record
    assert answered.peer_uri.startswith(f"sip:{daemon.settings.sip.user}@"), answered.peer_uri


# -- through a registrar -------------------------------------------------------------------------

KAMAILIO_CFG = """#!KAMAILIO
log_stderror=yes
fork=yes
children=1
listen=udp:127.0.0.1:{port}
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("usrloc", "db_mode", 0)
request_route {{
    if (is_method("REGISTER")) {{ save("location"); exit; }}
    if (has_totag()) {{ loose_route(); t_relay(); exit; }}
    if (is_method("INVITE")) {{ record_route(); }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""


def sip_answers(host: str, port: int, timeout: float) -> bool:
    """Whether a SIP server answers an OPTIONS (asked again every 0.2 s until `timeout`)."""
    request = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1"
               f"\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:{host}:{port}>\r\n"
               "Call-ID: probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
               "Content-Length: 0\r\n\r\n").encode()
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        request = request.replace(b"127.0.0.1:9", f"127.0.0.1:{sock.getsockname()[1]}".encode())
        while time.monotonic() < deadline:
            sock.sendto(request, (host, port))
            try:
                return sock.recv(4096).startswith(b"SIP/2.0")
            except (TimeoutError, ConnectionRefusedError):
                continue
    return False


@pytest.fixture
def registrar(tmp_path, ports):
    """kamailio on loopback as the PBX: it takes REGISTERs and routes INVITEs to contacts."""
    if shutil.which("kamailio") is None:
        pytest.skip("kamailio is not installed (apt-get install kamailio)")
    port = ports.take()
    config = tmp_path / "kamailio.cfg"
    config.write_text(KAMAILIO_CFG.format(port=port))
    process = subprocess.Popen(["kamailio", "-DD", "-E", "-f", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = sip_answers("127.0.0.1", port, timeout=15)
    if not ready:
        stop_process(process, 5)
    assert ready, "kamailio did not answer an OPTIONS within 15 s"
    yield f"127.0.0.1:{port}"
    stop_process(process, 5)


def test_an_extension_through_the_registrar_reaches_its_agent(start_daemon, phone,
                                                               synthesizer, registrar):
    daemon = start_daemon(phone, sip={"registrar": {"domain": registrar, "username": "assistant", "password": "pw",
                                                     "register_interval": 60}})
    greeting = "Extension ten fifty, reception."
    status, agent = daemon.request("POST", "/v1/agents", {
        "id": "reception", "lines": ["1050"], "persona": {"greeting": greeting}})
    assert status == 201, agent
    switchboard = daemon.daemon.switchboard
    for _ in range(100):  # the line's account registers at once (about 0.1 s here)
        if "1050" in switchboard.registered_lines:
            break
        time.sleep(0.1)
    assert "1050" in switchboard.registered_lines

    phone.set_speech(speech_track(synthesizer, [4.0, "Goodbye.", 3.0]), RATE)
    record = call_line(daemon, phone, "1050", host=registrar)
    said = answers(record)
    assert said[0] == greeting, turns(record)
    assert heard_audio(phone.recording(), synthesizer.synthesize(greeting), RATE) > 0.6

    # Taken away from the agent, the extension is unregistered: the PBX no longer finds it.
    assert daemon.request("PATCH", "/v1/agents/reception", {"lines": []})[0] == 200
    assert "1050" not in switchboard.registered_lines
