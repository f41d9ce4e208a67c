"""Piper speech through Whisper and back, with the real models (no mocks)."""

from __future__ import annotations

import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from sipassist.config import ModelSettings
from sipassist.models import resolve_asr_model, resolve_tts_voice
from sipassist.voice.asr import Transcriber, normalise_words, read_wav, word_error_rate
from sipassist.voice.resample import resample, to_pcm16
from sipassist.voice.tts import Synthesizer

from .audio_helpers import mulaw_decode, mulaw_encode, write_wav

TEXT = "Hello, this is a reminder about your appointment tomorrow at two."
RATE = 16000


# --- fixtures: each model loads once per session ----------------------------------------------


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def synthesizer(models_dir: Path) -> Synthesizer:
    return Synthesizer(resolve_tts_voice(ModelSettings(), models_dir), sample_rate=RATE)


@pytest.fixture(scope="session")
def transcriber(models_dir: Path) -> Transcriber:
    return Transcriber(resolve_asr_model(ModelSettings(), models_dir))


@pytest.fixture(scope="session")
def speech(synthesizer: Synthesizer) -> np.ndarray:
    return synthesizer.synthesize(TEXT)


# --- TTS --------------------------------------------------------------------------------------


@pytest.mark.models
def test_synthesize_gives_plausible_16k_speech(speech: np.ndarray) -> None:
    assert speech.dtype == np.float32 and speech.ndim == 1
    assert 1.5 <= speech.size / RATE <= 8.0
    peak = float(np.max(np.abs(speech)))
    assert 0.05 < peak <= 1.0
    assert float(np.sqrt(np.mean(speech**2))) > 0.01  # not silent


@pytest.mark.models
def test_second_call_is_served_from_cache(synthesizer: Synthesizer, speech: np.ndarray) -> None:
    hits, runs = synthesizer.cache_hits, synthesizer.syntheses
    again = synthesizer.synthesize(TEXT)
    assert again is speech
    assert synthesizer.cache_hits == hits + 1
    assert synthesizer.syntheses == runs
    with pytest.raises(ValueError):
        again[0] = 1.0  # cached audio is shared, so it is read-only


@pytest.mark.models
def test_concurrent_callers_synthesise_once(synthesizer: Synthesizer) -> None:
    text = "Please call the surgery if you need to change the time."
    runs = synthesizer.syntheses
    start = threading.Barrier(4)

    def call() -> np.ndarray:
        start.wait()
        return synthesizer.synthesize(text)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: call(), range(4)))
    assert synthesizer.syntheses == runs + 1
    assert all(result is results[0] for result in results)


@pytest.mark.models
def test_cache_evicts_least_recently_used(models_dir: Path) -> None:
    small = Synthesizer(resolve_tts_voice(ModelSettings(), models_dir), cache_size=2)
    for text in ("One.", "Two.", "One.", "Three."):  # "Two." is the least recently used
        small.synthesize(text)
    assert small.syntheses == 3 and small.cache_hits == 1
    small.synthesize("One.")
    assert small.cache_hits == 2
    small.synthesize("Two.")
    assert small.syntheses == 4


@pytest.mark.models
def test_stream_yields_resampled_sentences(synthesizer: Synthesizer) -> None:
    chunks = list(synthesizer.stream("Good morning. Your parcel arrives today."))
    assert len(chunks) == 2
    for chunk in chunks:
        assert chunk.dtype == np.float32 and chunk.size > RATE // 4
        assert np.max(np.abs(chunk)) <= 0.95 + 1e-6


# --- ASR --------------------------------------------------------------------------------------


@pytest.mark.models
def test_whisper_understands_piper(transcriber: Transcriber, speech: np.ndarray) -> None:
    started = time.perf_counter()
    text = transcriber.transcribe(speech, RATE)
    elapsed = time.perf_counter() - started
    print(f"\nASR 16 kHz: {elapsed:.2f} s, {text!r}, WER {word_error_rate(TEXT, text):.3f}")
    assert word_error_rate(TEXT, text) <= 0.2


@pytest.mark.models
def test_whisper_understands_piper_over_mulaw(transcriber: Transcriber, speech: np.ndarray) -> None:
    line = mulaw_decode(mulaw_encode(resample(speech, RATE, 8000)))
    text = transcriber.transcribe(line, 8000)
    print(f"\nASR 8 kHz mu-law: {text!r}, WER {word_error_rate(TEXT, text):.3f}")
    assert word_error_rate(TEXT, text) <= 0.25


@pytest.mark.models
def test_transcribe_file_still_being_recorded(
    transcriber: Transcriber, speech: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "live.wav"
    write_wav(path, resample(speech, RATE, 8000), 8000)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 4, 36)  # sizes as libsndfile leaves them mid-call
    struct.pack_into("<I", raw, 40, 0)
    path.write_bytes(raw)
    assert word_error_rate(TEXT, transcriber.transcribe_file(path)) <= 0.25


# --- pure helpers -----------------------------------------------------------------------------


def test_mulaw_round_trip_is_close() -> None:
    t = np.arange(800) / 8000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = mulaw_decode(mulaw_encode(x))
    assert np.max(np.abs(x - y)) < 0.02


def test_read_wav_repairs_stale_and_zero_headers(tmp_path: Path) -> None:
    x = (0.3 * np.sin(2 * np.pi * 300 * np.arange(1600) / 8000)).astype(np.float32)
    path = tmp_path / "rec.wav"
    write_wav(path, x, 8000)
    good = path.read_bytes()
    samples, rate = read_wav(path)
    assert rate == 8000 and np.allclose(samples, x, atol=1e-4)

    for riff, data in ((36, 0), (0, 0), (1000, 960)):  # live, never-updated and stale headers
        raw = bytearray(good + to_pcm16(x[:100]) + b"\x01")  # more audio and a torn frame
        struct.pack_into("<I", raw, 4, riff)
        struct.pack_into("<I", raw, 40, data)
        path.write_bytes(raw)
        samples, rate = read_wav(path)
        assert rate == 8000 and samples.size == x.size + 100


def test_word_error_rate() -> None:
    assert normalise_words("Hello, World! Don't-stop.") == ["hello", "world", "dont", "stop"]
    assert word_error_rate(TEXT, TEXT.upper().replace(",", "")) == 0.0
    assert word_error_rate("a b c d", "a x c") == pytest.approx(0.5)  # 1 sub + 1 del
    assert word_error_rate("a b", "a b c d") == pytest.approx(1.0)  # 2 insertions
    assert word_error_rate("", "") == 0.0 and word_error_rate("", "noise") == 1.0
