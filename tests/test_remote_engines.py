"""Remote ASR/TTS: box B hears and speaks through box A's OpenAI-compatible /v1 audio API.

Both daemons are real (their own jackd, baresip and API on loopback). A test phone calls B and
asks a question; A's metrics show it did the work. Then A stops, mid-call: B's next answer comes
from its own local models, and the call goes on.
"""

from __future__ import annotations

import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED

from .audio_helpers import heard_audio
from .test_conversation import RATE, finished_inbound, speech_track

pytestmark = [pytest.mark.telephony, pytest.mark.models]


def metric(daemon, name: str, **labels: str) -> float:
    text = daemon.daemon.metrics.exposition().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def answers(daemon) -> list[str]:
    record = daemon.daemon.queue.recent(1, "inbound")
    if not record:
        return []
    return [turn["text"] for turn in record[0].transcript if turn.get("tool") == "CALC"]


def test_remote_engines_and_falling_back_when_the_remote_stops(start_daemon, phone,
                                                                synthesizer):
    box_a = start_daemon(phone)
    remote = {"asr_backend": "remote", "asr_url": box_a.url + "/v1",
              "tts_backend": "remote", "tts_url": box_a.url + "/v1",
              "remote_timeout_seconds": 5.0}
    box_b = start_daemon(phone, models=remote)
    phone.set_speech(speech_track(synthesizer, [
        6.0, "What's 25 times 4 plus 10?", 9.0,
        "What's 6 times 7?", 9.0, "Goodbye.", 3.0]), RATE)
    phone.command("dial", box_b.sip_uri)
    phone.wait_event(CALL_ESTABLISHED)
    # The first answer was worked out with A's models (bounded wait on B's transcript).
    for _ in range(600):
        if answers(box_b):
            break
        threading.Event().wait(0.05)
    assert answers(box_b) == ["The result is 110"]
    assert metric(box_a, "sipassist_api_model_requests_total", model="asr", status="200") >= 1
    assert metric(box_a, "sipassist_api_model_requests_total", model="tts", status="200") >= 2
    assert metric(box_b, "sipassist_remote_fallbacks_total", model="asr") == 0

    box_a.stop()  # mid-call: the second question is still to come
    phone.wait_event(CALL_CLOSED, timeout=90)
    record = finished_inbound(box_b)
    assert record["status"] == "completed"
    assert answers(box_b) == ["The result is 110", "The result is 42"], record["transcript"]
    assert metric(box_b, "sipassist_remote_fallbacks_total", model="asr") >= 1
    assert metric(box_b, "sipassist_remote_fallbacks_total", model="tts") >= 1
    # The answer from B's own voice reached the phone.
    assert heard_audio(phone.recording(), synthesizer.synthesize("The result is 42"), RATE) > 0.6
