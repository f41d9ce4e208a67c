"""The bench's phone line: G.711 A-law against sox's, G.722 round trip, noise at a set SNR."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from sipassist.bench.line import alaw_decode, alaw_encode, through, with_noise
from sipassist.voice.resample import to_float32, to_pcm16


def _speechlike(seconds: float = 1.0, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * f * t) / (i + 1) for i, f in enumerate((220, 660, 1320)))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)  # syllable-rate loudness
    return (0.4 * tone / np.max(np.abs(tone)) * envelope).astype(np.float32)


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
def test_alaw_agrees_with_sox(tmp_path):
    """sox rounds to the nearest step where G.711's reference code truncates: the codes may
    differ by one step, the decoding must be the same."""
    audio = _speechlike()
    (tmp_path / "in.raw").write_bytes(to_pcm16(audio))
    raw = ["-t", "raw", "-r", "8000", "-c", "1"]
    subprocess.run(["sox", "-D", *raw, "-e", "signed", "-b", "16", str(tmp_path / "in.raw"),
                    *raw, "-e", "a-law", "-b", "8", str(tmp_path / "a.raw")], check=True)
    subprocess.run(["sox", "-D", *raw, "-e", "a-law", "-b", "8", str(tmp_path / "a.raw"),
                    *raw, "-e", "signed", "-b", "16", str(tmp_path / "out.raw")], check=True)
    theirs = np.frombuffer((tmp_path / "a.raw").read_bytes(), np.uint8)
    assert np.array_equal(alaw_decode(theirs), to_float32((tmp_path / "out.raw").read_bytes()))
    codes = alaw_encode(audio)
    mine, sox = alaw_decode(codes), alaw_decode(theirs)

    def step(c):  # the quantisation step at a code's level
        return np.abs(alaw_decode(c ^ 1) - alaw_decode(c))
    assert np.all(np.abs(mine - sox) <= np.maximum(step(codes), step(theirs)) + 1e-6)
    assert np.mean(codes == theirs) > 0.8


def test_alaw_is_the_reference_g711():
    audioop = pytest.importorskip("audioop", reason="audioop left Python in 3.13")
    audio = _speechlike()
    codes = alaw_encode(audio)
    assert codes.tobytes() == audioop.lin2alaw(to_pcm16(audio), 2)
    assert to_pcm16(alaw_decode(codes)) == audioop.alaw2lin(codes.tobytes(), 2)


def _snr_db(clean: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean**2) / np.sum((other - clean) ** 2)))


def test_g722_round_trip_keeps_the_speech():
    pytest.importorskip("G722", reason="the G722 package is not installed")
    audio = _speechlike(rate=16000)
    decoded, rate = through("g722", audio)
    assert rate == 16000 and decoded.size == audio.size
    # G.722's QMF filters delay the signal by 22 samples.
    lag = max(range(40), key=lambda k: float(np.dot(audio[: audio.size - k], decoded[k:])))
    assert _snr_db(audio[: audio.size - lag], decoded[lag:]) > 15


def test_noise_is_added_at_the_asked_snr():
    audio = _speechlike(rate=16000)
    assert abs(_snr_db(audio, with_noise(audio, 20.0, seed=1)) - 20.0) < 1.5


def test_g711_lines_are_8_khz():
    audio = _speechlike(rate=16000)
    for codec in ("ulaw", "alaw"):
        decoded, rate = through(codec, audio)
        assert rate == 8000 and abs(decoded.size - audio.size / 2) <= 1
