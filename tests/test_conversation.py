"""Calling the assistant: the test phone dials the daemon and asks questions out loud."""

from __future__ import annotations

import numpy as np
import pytest

from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED
from sipassist.voice.asr import normalise_words

from .station_sim import DavisSim, LoopValues

pytestmark = [pytest.mark.telephony, pytest.mark.models]

RATE = 16000


def speech_track(synthesizer, parts: list[float | str]) -> np.ndarray:
    """Silence (a number of seconds) and sentences (Piper speech), one after another."""
    pieces = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(synthesizer.synthesize(part))
        else:
            pieces.append(np.zeros(int(part * RATE), np.float32))
    return np.concatenate(pieces)


def finished_inbound(daemon) -> dict:
    """The inbound call's record, once the call has ended."""
    assert daemon.daemon.queue.wait_idle(timeout=30)
    calls = [r for r in daemon.daemon.queue._records.values() if r.direction == "inbound"]
    assert len(calls) == 1, calls
    return daemon.request("GET", f"/call/{calls[0].call_id}")[1]


def test_three_questions_and_goodbye(start_daemon, phone, synthesizer, transcriber):
    with DavisSim(LoopValues(temp_f=44.0, humidity=98, wind_mph=0)) as station:
        daemon = start_daemon(phone, station={"protocol": "davis", "port": station.path,
                                              "name": "Storm Lake"})
        phone.set_speech(speech_track(synthesizer, [
            4.5, "What time is it in Tokyo?", 7.0,
            "What's 25 times 4 plus 10?", 6.0,
            "What's the weather like?", 9.0,
            "Goodbye.", 3.0]), RATE)
        phone.command("dial", daemon.sip_uri)
        phone.wait_event(CALL_ESTABLISHED)
        phone.wait_event(CALL_CLOSED, timeout=90)  # the assistant hangs up after goodbye

    record = finished_inbound(daemon)
    assert record["status"] == "completed" and record["direction"] == "inbound"
    tools = [turn.get("tool") for turn in record["transcript"] if turn["who"] == "assistant"]
    assert [t for t in tools if t] == ["DATETIME", "CALC", "WEATHER"], record["transcript"]
    answers = {turn["tool"]: turn["text"] for turn in record["transcript"] if turn.get("tool")}
    assert "Japan Standard Time" in answers["DATETIME"]
    assert answers["CALC"] == "The result is 110"
    assert "44 degrees" in answers["WEATHER"]
    assert record["transcript"][-1] == {**record["transcript"][-1], "who": "assistant",
                                        "text": "Goodbye!"}

    heard = normalise_words(transcriber.transcribe_file(phone.recording()))
    text = " ".join(heard)
    assert "standard" in heard and "time" in heard, text
    assert "110" in text or "hundred" in text, text
    assert "44" in heard and "storm" in heard, text


def test_caller_hangs_up_mid_answer(start_daemon, phone, synthesizer):
    daemon = start_daemon(phone, conversation={
        "greeting": "Hello, this is your assistant. I will now say a rather long greeting, "
                    "so that the caller has time to hang up while I am still talking."})
    phone.command("dial", daemon.sip_uri)
    phone.wait_event(CALL_ESTABLISHED)
    assert daemon.daemon.active.latest(wait=10) is not None  # the greeting is playing
    phone.command("hangup")
    phone.wait_event(CALL_CLOSED)
    # The dialogue ends cleanly, and the assistant takes the next call.
    record = finished_inbound(daemon)
    assert record["status"] == "completed" and record["error"] is None
    phone.set_speech(speech_track(synthesizer, [3.0, "Goodbye.", 5.0]), RATE)
    phone.command("dial", daemon.sip_uri)
    phone.wait_event(CALL_ESTABLISHED)
    phone.wait_event(CALL_CLOSED, timeout=60)


def test_barge_in_stops_the_assistant(start_daemon, phone, synthesizer, transcriber):
    long_greeting = ("Hello, this is your assistant. Before we start, let me tell you about "
                     "everything I can do for you today, which is quite a lot, so please bear "
                     "with me while I go through the whole list of my many talents, one by one.")
    daemon = start_daemon(phone, conversation={"greeting": long_greeting})
    phone.set_speech(speech_track(synthesizer, [3.0, "What's 6 times 7?", 8.0, "Goodbye.", 3.0]),
                     RATE)
    phone.command("dial", daemon.sip_uri)
    phone.wait_event(CALL_ESTABLISHED)
    phone.wait_event(CALL_CLOSED, timeout=60)

    record = finished_inbound(daemon)
    calc = [turn for turn in record["transcript"] if turn.get("tool") == "CALC"]
    assert calc and calc[0]["text"] == "The result is 42", record["transcript"]
    heard = " ".join(normalise_words(transcriber.transcribe_file(phone.recording())))
    assert "42" in heard or "forty" in heard, heard
    assert "talents" not in heard, heard  # the greeting was cut short
