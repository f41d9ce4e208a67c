"""/v1/calls call control with real baresip phones: hang up, respond, audio, DTMF, route."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from sipassist.telephony.events import (
    CALL_CLOSED,
    CALL_DTMF_START,
    CALL_ESTABLISHED,
    CALL_INCOMING,
    TRANSFER,
)

from .audio_helpers import heard_audio, wav_bytes

MESSAGE = ("Hello. This is a reminder about the meeting on the third floor, "
           "which starts at ten and ends at noon, so please bring your notes. ")
LONG_MESSAGE = MESSAGE * 4
REPLY = "Sorry to interrupt, here is the answer you asked for."


def send(daemon, method: str, path: str, data: bytes, content_type: str) -> tuple[int, dict]:
    req = urllib.request.Request(daemon.url + path, data=data, method=method,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def tone_wav(rate: int, seconds: float) -> tuple[bytes, np.ndarray]:
    """A WAV of a 300-900 Hz chirp at `rate`: unique in time, and inside the band that
    baresip's resampling and G.711 keep (higher tones come out much weaker)."""
    t = np.arange(int(rate * seconds)) / rate
    samples = (0.4 * np.sin(2 * np.pi * (300 + 150 * t) * t)).astype(np.float32)
    return wav_bytes(samples, rate), samples


def place(daemon, to: str = "phone", message: str = LONG_MESSAGE, **more) -> str:
    status, body = daemon.request("POST", "/v1/calls", {"to": to, "message": message, **more})
    assert status == 201, body
    assert body["status"] == "queued" and body["call_id"]
    return body["call_id"]


def test_control_a_live_call_then_hang_up(start_daemon, phone, synthesizer):
    daemon = start_daemon(phone)
    call_id = place(daemon)
    phone.wait_event(CALL_ESTABLISHED)

    # DTMF: each key reaches the phone as its own press.
    status, body = daemon.request("POST", f"/v1/calls/{call_id}/dtmf", {"digits": "19#"})
    assert status == 200, body
    pressed = [phone.wait_event(CALL_DTMF_START, timeout=10).param[:1] for _ in range(3)]
    assert pressed == ["1", "9", "#"]

    # respond with interrupt: cuts the long message, heard at once.
    status, body = daemon.request("POST", f"/v1/calls/{call_id}/respond",
                                  {"text": REPLY, "interrupt": True})
    assert status == 200, body
    assert body["played"] and body["interrupted_other"]

    # audio: a 44.1 kHz WAV, resampled and played; a file that does not decode is refused.
    wav, samples = tone_wav(44100, 2.0)
    status, body = send(daemon, "PUT", f"/v1/calls/{call_id}/audio", wav, "audio/wav")
    assert status == 200, body
    assert body["seconds"] == 2.0
    status, body = send(daemon, "PUT", f"/v1/calls/{call_id}/audio", b"RIFF nonsense",
                        "audio/wav")
    assert status == 415 and "expected a WAV or FLAC file" in body["detail"], body

    # Bad targets for a transfer are refused before anything is sent.
    status, body = daemon.request("PUT", f"/v1/calls/{call_id}/route", {})
    assert status == 400 and "to is required" in body["detail"], body
    status, body = daemon.request("PUT", f"/v1/calls/{call_id}/route", {"to": "a b;c"})
    assert status == 400 and "to must be" in body["detail"], body

    status, body = daemon.request("PUT", f"/v1/calls/{call_id}/hangup", raw=b"")
    assert status == 200, body
    phone.wait_event(CALL_CLOSED, timeout=10)
    assert body["status"] == "completed" and body["hangup_by"] == "api", body
    status, body = daemon.request("GET", f"/v1/calls/{call_id}")
    assert body["status"] == "completed" and body["hangup_by"] == "api"
    assert body["completed_at"]

    # The phone heard the reply and the file (the very audio, by correlation); the hangup
    # came right after the file left the daemon, so its last ~0.1 s on the line is cut off.
    assert heard_audio(phone.recording(), synthesizer.synthesize(REPLY), 16000) > 0.6
    assert heard_audio(phone.recording(), samples[:int(1.5 * 44100)], 44100) > 0.8

    # An ended call cannot be hung up or routed; an unknown one is not found.
    for method, action, payload in (("PUT", "hangup", None), ("PUT", "route", {"to": "200"})):
        status, body = daemon.request(method, f"/v1/calls/{call_id}/{action}", payload)
        assert status == 409 and "already ended" in body["detail"], body
    status, body = daemon.request("PUT", "/v1/calls/nope/hangup")
    assert status == 404, body
    status, body = daemon.request("POST", "/v1/calls/nope/dtmf", {"digits": "1"})
    assert status == 404, body
    status, body = daemon.request("POST", f"/v1/calls/{call_id}/dtmf", {"digits": "1x"})
    assert status == 400 and "digits" in body["detail"], body
    status, body = daemon.request("POST", "/v1/calls", {"to": "phone", "agent_id": "a1"})
    assert status == 404 and "'a1'" in body["detail"], body
    status, body = daemon.request("GET", "/v1/calls")
    assert status == 200 and body[0]["call_id"] == call_id


def test_route_transfers_to_a_second_phone(start_daemon, phone, ports, tmp_path, webhook):
    second = ports.phone(tmp_path / "second", answermode="manual", user="second")
    try:
        daemon = start_daemon(phone)
        target = f"sip:second@127.0.0.1:{second.sip_port}"

        # The target refuses: 502 TRANSFER_FAILED with the reason, kept in the record.
        call_id = place(daemon, message=MESSAGE, callback_url=webhook.url)
        phone.wait_event(CALL_ESTABLISHED)
        with ThreadPoolExecutor(1) as pool:
            refused = pool.submit(daemon.request, "PUT", f"/v1/calls/{call_id}/route",
                                  {"to": target})
            assert phone.wait_event(TRANSFER, timeout=10).param == target
            second.wait_event(CALL_INCOMING, timeout=10)
            second.command("hangup")
            status, body = refused.result(timeout=30)
        assert status == 502 and body["detail"].startswith("TRANSFER_FAILED: "), body
        status, body = daemon.request("GET", f"/v1/calls/{call_id}")
        assert body["status"] == "in_progress", body  # the call goes on
        ended = webhook.wait(1, timeout=60)[0]  # the message plays out, then the hangup
        assert ended["status"] == "completed", ended
        assert (ended["error"] or "").startswith("TRANSFER_FAILED: "), ended

        # Answered: the phone was asked (REFER) to call the target and did; the call ends
        # transferred.
        call_id = place(daemon)
        phone.wait_event(CALL_ESTABLISHED)
        with ThreadPoolExecutor(1) as pool:
            routed = pool.submit(daemon.request, "PUT", f"/v1/calls/{call_id}/route",
                                 {"to": target})
            assert phone.wait_event(TRANSFER, timeout=10).param == target
            incoming = second.wait_event(CALL_INCOMING, timeout=10)
            assert incoming.peer_uri == phone.uri
            second.command("accept")
            second.wait_event(CALL_ESTABLISHED, timeout=10)
            status, body = routed.result(timeout=30)
        assert status == 200, body
        assert body["status"] == "transferred" and body["transferred_to"] == target, body
        assert body["error"] is None
    finally:
        second.stop()


def test_hang_up_while_ringing(start_daemon, manual_phone):
    daemon = start_daemon(manual_phone)
    call_id = place(daemon)
    manual_phone.wait_event(CALL_INCOMING)
    status, body = daemon.request("PUT", f"/v1/calls/{call_id}/hangup")
    assert status == 200, body
    manual_phone.wait_event(CALL_CLOSED, timeout=10)
    assert body["status"] == "no_answer" and body["hangup_by"] == "api", body
    assert body["error"] is None


def test_speak_with_call_id_reaches_that_call_only(start_daemon, phone, ports, tmp_path,
                                                    synthesizer):
    """Seed 003's POST /speak?call_id= speaks into the named call, not the latest one."""
    second = ports.phone(tmp_path / "second", user="second")
    try:
        daemon = start_daemon(phone, queue={"max_concurrent": 2})
        first_id = place(daemon, message=MESSAGE)
        phone.wait_event(CALL_ESTABLISHED)
        second_id = place(daemon, to=f"sip:second@127.0.0.1:{second.sip_port}")
        second.wait_event(CALL_ESTABLISHED)
        query = urllib.parse.urlencode({"message": REPLY, "call_id": first_id})
        status, body = send(daemon, "POST", f"/speak?{query}", b"", "text/plain")
        assert status == 200, body  # answered once heard, after the message: up to ~15 s
        phone.wait_event(CALL_CLOSED, timeout=30)
        status, body = daemon.request("PUT", f"/v1/calls/{second_id}/hangup")
        assert status == 200, body
        second.wait_event(CALL_CLOSED, timeout=10)
        reply = synthesizer.synthesize(REPLY)
        scores = [heard_audio(p.recording(), reply, 16000) for p in (phone, second)]
        assert scores[0] > 0.6 and scores[1] < 0.3, scores
    finally:
        second.stop()
