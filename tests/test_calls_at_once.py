"""Three calls at once with real baresip phones: each phone hears only its own call.

Two outbound calls (a message through seed 003's POST /call, a choice through /v1/calls) are up
when a caller rings in and asks a question: answering that call makes baresip 1.0 try to hold
one of the others (holding.py), which must keep its audio; a fourth caller hears busy. Each
recording is matched against what the daemon synthesised for that phone (high) and for the
others (low).
"""

from __future__ import annotations

import numpy as np
import pytest

from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED

from .audio_helpers import heard_audio

pytestmark = [pytest.mark.telephony, pytest.mark.models]

RATE = 16000
REMINDER = ("Hello. This is a reminder that the boiler in the basement will be serviced "
            "on Thursday morning, so the hot water will be off from eight until eleven. ")
OFFER = "Good afternoon! Your parcel can be delivered tomorrow between nine and noon."
PROMPT = "Say yes to accept that time, or no to choose another day."
CHOICE = {
    "prompt": PROMPT,
    "options": [{"value": "accepted", "synonyms": ["yes", "yeah", "accept"]},
                {"value": "declined", "synonyms": ["no", "nope", "another"]}],
    "timeout_seconds": 6,
}
QUESTION = "What's 25 times 4 plus 10?"


def speech(synthesizer, parts: list[float | str]) -> np.ndarray:
    return np.concatenate([synthesizer.synthesize(p) if isinstance(p, str)
                           else np.zeros(int(p * RATE), np.float32) for p in parts])


def test_three_calls_at_once_each_hears_only_its_own(start_daemon, phone, ports, tmp_path,
                                                     synthesizer):
    listener = phone  # the daemon's default extension: gets the reminder through POST /call
    chooser = ports.phone(tmp_path / "chooser", user="chooser")
    caller = ports.phone(tmp_path / "caller", user="caller")
    try:
        offer_seconds = (len(synthesizer.synthesize(OFFER))
                         + len(synthesizer.synthesize(PROMPT))) / RATE
        chooser.set_speech(speech(synthesizer, [offer_seconds + 3.0, "Yes, that works."]),
                           RATE)
        caller.set_speech(speech(synthesizer, [4.5, QUESTION, 8.0, "Goodbye.", 3.0]), RATE)
        daemon = start_daemon(listener, queue={"max_concurrent": 3})

        status, body = daemon.request("POST", "/call", {"message": REMINDER * 2,
                                                        "extension": "phone"})
        assert status == 200, body
        reminder_id = body["call_id"]
        status, body = daemon.request("POST", "/v1/calls", {
            "to": f"sip:chooser@127.0.0.1:{chooser.sip_port}", "message": OFFER,
            "choice": CHOICE})
        assert status == 201, body
        choice_id = body["call_id"]
        listener.wait_event(CALL_ESTABLISHED, timeout=30)
        chooser.wait_event(CALL_ESTABLISHED, timeout=30)
        # Both outbound calls are up: a caller rings in and is answered beside them.
        caller.command("dial", daemon.sip_uri)
        caller.wait_event(CALL_ESTABLISHED)
        assert daemon.daemon.queue.status()["active"] == 3
        # A fourth caller, over max_concurrent: busy (486) at once, the others go on.
        fourth = ports.phone(tmp_path / "fourth", user="fourth")
        try:
            fourth.command("dial", daemon.sip_uri)
            closed = fourth.wait_event(CALL_CLOSED)
            assert "486" in closed.param or "busy" in closed.param.lower(), closed
        finally:
            fourth.stop()
        for one in (caller, chooser, listener):
            one.wait_event(CALL_CLOSED, timeout=120)
        assert daemon.daemon.queue.wait_idle(timeout=30)

        status, inbound = daemon.request("GET", "/calls?direction=inbound")
        assert status == 200, inbound
        assert sorted(c["status"] for c in inbound) == ["busy", "completed"], inbound
        asked_id = next(c["call_id"] for c in inbound if c["status"] == "completed")
        asked = daemon.request("GET", f"/call/{asked_id}")[1]
        reminded = daemon.request("GET", f"/call/{reminder_id}")[1]
        chosen = daemon.request("GET", f"/v1/calls/{choice_id}")[1]
        turns = asked["transcript"]
        assert asked["status"] == "completed", asked
        answers = [t["text"] for t in turns if t["who"] == "assistant" and t.get("tool")]
        assert answers == ["The result is 110"], [(t["who"], t["text"]) for t in turns]
        assert reminded["status"] == "completed", reminded
        assert chosen["status"] == "completed", chosen
        assert chosen["choice_response"] == "accepted", chosen

        played = {"caller": synthesizer.synthesize(answers[0]),
                  "listener": synthesizer.synthesize((REMINDER * 2).strip()),  # as the API keeps it
                  "chooser": synthesizer.synthesize(OFFER)}
        phones = {"caller": caller, "listener": listener, "chooser": chooser}
        scores = {(heard_by, meant_for): heard_audio(phones[heard_by].recording(), audio, RATE)
                  for heard_by in phones for meant_for, audio in played.items()}
        print("correlation (heard by, meant for):", scores,
              "JACK xruns:", daemon.daemon.switchboard.bridge.xruns)
        for (heard_by, meant_for), score in scores.items():
            if heard_by == meant_for:
                assert score > 0.6, (heard_by, scores)
            else:
                assert score < 0.3, (heard_by, meant_for, scores)
    finally:
        chooser.stop()
        caller.stop()


def test_two_callers_at_the_same_instant_are_both_answered_and_not_on_hold(
        start_daemon, phone, ports, tmp_path, webhook):
    """Answering one caller while the other still rings made baresip 1.0 mark the ringing one
    held, and answer it on hold (measured, holding.py): every other call is resumed."""
    other = ports.phone(tmp_path / "other", user="other")
    try:
        daemon = start_daemon(phone, queue={"max_concurrent": 3})
        assert daemon.request("POST", "/v1/webhooks", {
            "url": webhook.url, "events": ["call.answered"]})[0] == 201
        phone.command("dial", daemon.sip_uri)
        other.command("dial", daemon.sip_uri)
        for one in (phone, other):
            one.wait_event(CALL_ESTABLISHED)
        # baresip has both established (its ACKs in, as call.answered says), and the resumes
        # written with the answers have run: neither is on hold.
        webhook.wait(2)
        held, listing = daemon.daemon.switchboard.held_calls()
        assert held == 2 and listing.count("ESTABLISHED") == 2, listing
        assert "on hold" not in listing, listing
        for one in (phone, other):
            one.command("hangup")
            one.wait_event(CALL_CLOSED)
        assert daemon.daemon.queue.wait_idle(timeout=30)
        status, listed = daemon.request("GET", "/calls?direction=inbound")
        assert [c["status"] for c in listed] == ["completed", "completed"], listed
    finally:
        other.stop()
