"""Resampling keeps pitch, duration and level, and suppresses aliasing."""

from __future__ import annotations

import numpy as np
import pytest

from sipassist.voice.resample import blocks, resample, to_float32, to_pcm16


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_frequency(x: np.ndarray, rate: int) -> float:
    """FFT peak, zero-padded 8x so the bin spacing is well under the 2 Hz tolerance."""
    n = len(x) * 8
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=n))
    return float(np.argmax(spectrum) * rate / n)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_22050_to_16000_keeps_pitch_length_and_level() -> None:
    x = tone(440, 22050, seconds=2.0, amplitude=0.8)
    y = resample(x, 22050, 16000)
    assert y.dtype == np.float32
    assert abs(len(y) - len(x) * 16000 / 22050) <= 1
    assert abs(peak_frequency(y, 16000) - 440) <= 2
    assert np.max(np.abs(y)) <= np.max(np.abs(x)) * 1.01
    assert rms(y[200:-200]) == pytest.approx(rms(x), rel=0.01)


def test_round_trip_16000_8000_16000() -> None:
    x = tone(1000, 16000)
    down = resample(x, 16000, 8000)
    assert len(down) == 8000
    back = resample(down, 8000, 16000)
    assert len(back) == len(x)
    assert np.corrcoef(x, back)[0, 1] > 0.99
    assert abs(peak_frequency(back, 16000) - 1000) <= 2


def test_downsampling_suppresses_aliases() -> None:
    # 7 kHz does not exist at 8 kHz; without a low-pass it would fold back to an audible 1 kHz.
    x = tone(7000, 16000)
    y = resample(x, 16000, 8000)
    assert rms(y[100:-100]) < rms(x) * 1e-3  # at least 60 dB down


def test_upsampling_8000_to_16000_adds_no_images() -> None:
    x = tone(1000, 8000)
    y = resample(x, 8000, 16000)
    spectrum = np.abs(np.fft.rfft(y[400:-400] * np.hanning(len(y) - 800)))
    freqs = np.fft.rfftfreq(len(y) - 800, 1 / 16000)
    assert spectrum[freqs > 4000].max() < spectrum.max() * 1e-3  # no 7 kHz mirror image


def test_identity_and_empty() -> None:
    x = tone(300, 16000, seconds=0.1)
    assert np.array_equal(resample(x, 16000, 16000), x)
    assert resample(np.zeros(0, np.float32), 22050, 16000).size == 0


def test_odd_ratio_and_long_input() -> None:
    x = tone(440, 44100, seconds=3.0)
    y = resample(x, 44100, 16001)  # a ratio with no small common factor
    assert abs(len(y) - len(x) * 16001 / 44100) <= 1
    assert abs(peak_frequency(y, 16001) - 440) <= 2


def test_output_is_clipped_only_as_a_guard() -> None:
    square = np.sign(tone(500, 16000)).astype(np.float32)  # Gibbs overshoot after filtering
    y = resample(square, 16000, 8000)
    assert np.max(np.abs(y)) <= 1.0


def test_pcm16_round_trip() -> None:
    x = tone(440, 8000, seconds=0.1, amplitude=0.9)
    pcm = to_pcm16(x)
    assert isinstance(pcm, bytes) and len(pcm) == 2 * len(x)
    assert np.max(np.abs(to_float32(pcm) - x)) < 1e-4
    assert np.array_equal(to_float32(np.frombuffer(pcm, "<i2")), to_float32(pcm))
    assert to_pcm16(np.array([2.0, -2.0], np.float32)) == np.array([32767, -32767], "<i2").tobytes()


def test_blocks_pad_the_last_block() -> None:
    x = np.arange(7, dtype=np.float32)
    out = list(blocks(x, 3))
    assert [b.tolist() for b in out] == [[0, 1, 2], [3, 4, 5], [6, 0, 0]]
    assert all(b.dtype == np.float32 for b in out)
    assert list(blocks(np.zeros(0), 3)) == []
