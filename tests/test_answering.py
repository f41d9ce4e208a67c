"""Telling a person from an answering machine, on Piper speech through a G.711 line."""

from __future__ import annotations

import numpy as np
import pytest

from sipassist.voice.answering import (
    GREETING_END_SILENCE_SECONDS,
    HUMAN,
    MACHINE,
    SILENT_ANSWER_SECONDS,
    UNKNOWN,
    AnsweringDetector,
)

from sipassist.voice.resample import resample

from .audio_helpers import PHONE_RATE, phone_line

RATE = 16000
GREETING = ("Hi, you have reached Sam and Alex. We cannot take your call right now. "
            "Please leave your name, your number and a short message after the tone.")


def beep(seconds: float = 0.4, hz: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def line(track: np.ndarray) -> np.ndarray:
    """The track as the daemon gets it: over G.711 and back to the bridge rate."""
    return resample(phone_line(track, RATE), PHONE_RATE, RATE)


def run(track: np.ndarray, decide_within: float = 4.0, beep_within: float = 30.0):
    """Feed the track (as the line delivers it) in 20 ms frames; the verdict or None."""
    detector = AnsweringDetector(RATE, decide_within, beep_within)
    heard = line(track)
    frame = RATE // 50
    for start in range(0, len(heard) - frame + 1, frame):
        verdict = detector.feed(heard[start:start + frame])
        if verdict is not None:
            return verdict
    return None


@pytest.fixture(scope="module")
def greeting(synthesizer) -> np.ndarray:
    return synthesizer.synthesize(GREETING)


def test_a_long_greeting_then_a_beep_is_a_machine(greeting):
    track = np.concatenate([silence(0.3), greeting, silence(0.4), beep(0.4), silence(5)])
    verdict = run(track)
    assert verdict is not None and verdict.answered_by == MACHINE and verdict.beep, verdict
    beep_end = (len(track) - len(silence(5))) / RATE
    assert beep_end <= verdict.message_at <= beep_end + 0.2, (verdict, beep_end)
    assert verdict.decided_at < 3.5, verdict  # known long before the greeting ends


def test_a_greeting_without_a_beep_ends_in_silence(greeting):
    track = np.concatenate([silence(0.3), greeting, silence(5)])
    verdict = run(track)
    assert verdict is not None and verdict.answered_by == MACHINE and not verdict.beep
    end = (0.3 * RATE + len(greeting)) / RATE
    assert end + GREETING_END_SILENCE_SECONDS - 0.3 <= verdict.message_at \
        <= end + GREETING_END_SILENCE_SECONDS + 0.5, (verdict, end)


def test_hello_is_a_person_answered_at_once(synthesizer):
    hello = synthesizer.synthesize("Hello?")
    verdict = run(np.concatenate([silence(0.4), hello, silence(5)]))
    assert verdict is not None and verdict.answered_by == HUMAN, verdict
    assert verdict.message_at < 0.4 + len(hello) / RATE + 1.0, verdict


def test_silence_is_unknown_and_the_message_still_plays():
    verdict = run(silence(6))
    assert verdict is not None and verdict.answered_by == UNKNOWN, verdict
    assert verdict.message_at == pytest.approx(SILENT_ANSWER_SECONDS, abs=0.05)


def test_a_short_greeting_with_a_beep_is_a_machine(synthesizer):
    track = np.concatenate([silence(0.2), synthesizer.synthesize("Leave a message."),
                            silence(0.2), beep(0.3, 850.0), silence(4)])
    verdict = run(track)
    assert verdict is not None and verdict.answered_by == MACHINE and verdict.beep, verdict


def test_speech_is_never_taken_for_a_beep(greeting, synthesizer):
    """Long speech with held vowels: no frame run of it passes as a tone."""
    speech = np.concatenate([greeting, synthesizer.synthesize(
        "Ooooh, wow. Mmmm, well, hello there, yes, I am here. Aaaah, sorry, hold on.")])
    detector = AnsweringDetector(RATE, 100.0, 100.0)
    heard = line(speech)
    frame = RATE // 50
    longest = 0
    for start in range(0, len(heard) - frame + 1, frame):
        detector.tone.feed(heard[start:start + frame])
        longest = max(longest, detector.tone.run)
    assert longest < 7, longest  # a beep needs 8 (150 ms)


def test_detection_is_bounded():
    """Endless speech-like noise with no pause: the message starts at the bound anyway."""
    rng = np.random.default_rng(1)
    babble = np.concatenate([0.2 * rng.standard_normal(RATE * 20).astype(np.float32)])
    verdict = run(babble, decide_within=3.0, beep_within=4.0)
    assert verdict is not None, "detection never ended"
    assert verdict.message_at <= 3.0 + 4.0 + 0.1, verdict
