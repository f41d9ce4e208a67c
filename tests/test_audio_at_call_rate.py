"""Decoding uploaded audio at a call's rate (PUT /v1/calls/{id}/audio): any rate, WAV or FLAC, or a clear no."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from sipassist.voice.audio_files import AudioError, decode_at
from sipassist.voice.resample import resample

from .audio_helpers import wav_bytes


def tone(rate: int, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([mono] * channels) if channels > 1 else mono


def flac_bytes(stereo: np.ndarray, rate: int) -> bytes:
    """A stereo FLAC written by FFmpeg (PyAV), as a user's recorder would."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="stereo")
        pcm = (stereo * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.T.reshape(1, -1).copy(), format="s16",
                                           layout="stereo")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def close_to(decoded: np.ndarray, expected: np.ndarray) -> float:
    n = min(len(decoded), len(expected))
    return float(np.corrcoef(decoded[:n], expected[:n])[0, 1])


def test_wav_at_44100_is_resampled():
    samples = tone(44100)
    decoded = decode_at(wav_bytes(samples, 44100), 16000)
    assert len(decoded) == 16000
    assert close_to(decoded, resample(samples, 44100, 16000)) > 0.999


def test_stereo_flac_at_48000_becomes_mono_at_the_call_rate():
    stereo = tone(48000, channels=2)
    decoded = decode_at(flac_bytes(stereo, 48000), 16000)
    assert abs(len(decoded) - 16000) <= 1
    assert close_to(decoded, resample(stereo[0], 48000, 16000)) > 0.999
    assert np.abs(decoded).max() == pytest.approx(0.5, abs=0.01)  # mixed down, not summed


@pytest.mark.parametrize("data, problem", [
    (b"", "empty"),
    (b"RIFF\x00\x00\x00\x00WAVEjunk", "WAV file has no fmt chunk"),
    (b"plain text, not audio at all" * 10, "expected a WAV or FLAC file"),
])
def test_what_does_not_decode_says_why(data, problem):
    with pytest.raises(AudioError, match=problem):
        decode_at(data, 16000)
