"""The short-window Whisper path: phone-quality Piper speech in 5/10 s windows, loops guarded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sipassist.voice.asr import (
    FULL_PATH_SECONDS,
    Transcriber,
    choose_window,
    cut_repetition,
    token_budget,
    word_error_rate,
)
from sipassist.voice.tts import Synthesizer

from .audio_helpers import PHONE_RATE, phone_line

SHORT_SENTENCES = (
    "Yes.",  # 5 s window: alone in it, Whisper tends to say it twice
    "Turn off the lights in the living room.",
    "How long does it take to get to the airport by train?",
    "I would like to book an appointment with the dentist for next Tuesday afternoon,"
    " because I work in the morning.",  # ~5.5 s: the 10 s window
)
LONG_SENTENCES = (
    "Hello, this is a message for the building manager.",
    "The heating in the top flat has not worked since Monday.",
    "The radiators in the kitchen and the bedroom are cold.",
    "Could someone come round tomorrow morning to have a look at it?",
    "Please call me back when you know what time you can come.",
    "I will be at home all day, so any time tomorrow is fine for me.",
    "Thank you very much, and have a nice evening.",
)


def _line(synthesizer: Synthesizer, text: str) -> np.ndarray:
    return phone_line(synthesizer.synthesize(text), synthesizer.sample_rate)


# --- with the models --------------------------------------------------------------------------


@pytest.mark.models
@pytest.mark.parametrize("text", SHORT_SENTENCES)
def test_short_utterances_use_a_short_window(
    synthesizer: Synthesizer, transcriber: Transcriber, text: str
) -> None:
    line = _line(synthesizer, text)
    seconds = line.size / PHONE_RATE
    short_calls = transcriber.short_calls
    heard = transcriber.transcribe(line, PHONE_RATE)
    wer = word_error_rate(text, heard)
    print(f"\n{seconds:.2f} s, {transcriber.last_window_seconds} s window: {heard!r} WER {wer:.2f}")
    assert wer <= 0.25
    assert transcriber.last_path == "short"
    assert transcriber.last_window_seconds == choose_window(seconds)
    assert transcriber.last_window_seconds in (5, 10)
    assert transcriber.short_calls == short_calls + 1


@pytest.mark.models
def test_detailed_result_and_forced_full_path_agree(
    synthesizer: Synthesizer, transcriber: Transcriber
) -> None:
    text = SHORT_SENTENCES[2]
    line = _line(synthesizer, text)
    short = transcriber.transcribe_detailed(line, PHONE_RATE)
    full = transcriber.transcribe_detailed(line, PHONE_RATE, full=True)
    assert (short.path, short.window_seconds) == ("short", 5)
    assert (full.path, full.window_seconds) == ("full", 30)
    assert transcriber.last_path == "full"
    assert short.audio_seconds == pytest.approx(line.size / PHONE_RATE, abs=0.01)
    assert 0 < short.tokens <= token_budget(short.audio_seconds)
    assert word_error_rate(text, short.text) <= 0.25
    assert word_error_rate(text, full.text) <= 0.25


@pytest.mark.models
@pytest.mark.parametrize("level", [0.0, 0.002, 0.01])  # digital silence, faint and audible hiss
def test_silence_and_noise_give_no_runaway_text(transcriber: Transcriber, level: float) -> None:
    rng = np.random.default_rng(7)
    noise = (level * rng.standard_normal(16000)).astype(np.float32)  # 1 s at 16 kHz
    heard = transcriber.transcribe(phone_line(noise, 16000), PHONE_RATE)
    print(f"\nnoise {level}: {heard!r} ({transcriber.last_path})")
    assert len(heard) < 40
    assert transcriber.last_window_seconds == 5


@pytest.mark.models
def test_twenty_seconds_use_the_30_s_window(
    synthesizer: Synthesizer, transcriber: Transcriber
) -> None:
    pause = np.zeros(synthesizer.sample_rate * 3 // 10, np.float32)
    speech = np.concatenate(
        [part for text in LONG_SENTENCES for part in (synthesizer.synthesize(text), pause)]
    )
    line = phone_line(speech, synthesizer.sample_rate)
    seconds = line.size / PHONE_RATE
    assert 15 <= seconds <= FULL_PATH_SECONDS
    reference = " ".join(LONG_SENTENCES)
    heard = transcriber.transcribe(line, PHONE_RATE)
    wer = word_error_rate(reference, heard)
    print(f"\n{seconds:.1f} s ({transcriber.last_path}): {heard!r} WER {wer:.2f}")
    assert transcriber.last_window_seconds == 30
    assert wer <= 0.25


@pytest.mark.models
def test_concurrent_callers_get_the_serial_answers(
    synthesizer: Synthesizer, transcriber: Transcriber
) -> None:
    lines = [_line(synthesizer, text) for text in SHORT_SENTENCES[1:3]]
    serial = [transcriber.transcribe(line, PHONE_RATE) for line in lines]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda line: transcriber.transcribe(line, PHONE_RATE), lines * 2))
    assert parallel == serial * 2


# --- pure helpers -----------------------------------------------------------------------------


def test_choose_window() -> None:
    assert choose_window(0.3) == 5
    assert choose_window(4.4) == 5
    assert choose_window(4.9) == 10  # too little silence left in a 5 s window
    assert choose_window(9.4) == 10
    assert choose_window(12.0) == 30
    assert choose_window(FULL_PATH_SECONDS) == 30
    assert choose_window(FULL_PATH_SECONDS + 1) is None  # WhisperModel.transcribe


def test_token_budget_grows_with_the_audio() -> None:
    assert token_budget(0.5) >= 8
    assert token_budget(5.0) > token_budget(1.0)
    assert token_budget(FULL_PATH_SECONDS) < 224  # within what CTranslate2 will decode


@pytest.mark.parametrize(
    ("raw", "cut", "truncated"),
    [
        ("Yes. Yes.", "Yes.", False),
        ("What time is it? What time is it? What time is it?", "What time is it?", False),
        ("Q? Q? Q? Q?", "Q?", False),
        ("call me call me call me later", "call me", False),
        ("Call Sam. Tell him I'm late. Call Sam. Tell him", "Call Sam. Tell him I'm late.", True),
        ("Book a table. Book", "Book a table.", True),
        ("A. B. A. B. A", "A. B.", True),
        ("Call me back. I'm at home. Call me back.", "Call me back. I'm at home. Call me back.",
         False),  # said again later, not in a loop: kept
        ("Book a table. Book", "Book a table. Book", False),  # not at the cap: maybe real
        ("Turn off the lights in the living room.", "Turn off the lights in the living room.", False),
        ("No, not that one. The other one.", "No, not that one. The other one.", False),
        ("", "", False),
    ],
)
def test_cut_repetition(raw: str, cut: str, truncated: bool) -> None:
    assert cut_repetition(raw, truncated=truncated) == cut
