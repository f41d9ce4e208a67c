"""Audio helpers shared by the tests: a phone line's mu-law round trip and a WAV writer."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from sipassist.bench.sentences import PHONE_RATE, mulaw_decode, mulaw_encode, phone_line
from sipassist.voice.resample import to_pcm16

__all__ = ["PHONE_RATE", "mulaw_decode", "mulaw_encode", "phone_line", "write_wav"]


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """16-bit mono PCM WAV."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(to_pcm16(samples))


def best_match(recording: np.ndarray, expected: np.ndarray) -> float:
    """The highest normalised cross-correlation of `expected` anywhere in `recording`.

    Near 1 when the very audio the daemon played is in the phone's recording (G.711 gives
    about 0.9); speech that is merely similar stays far lower.
    """
    n = len(recording) + len(expected)
    size = 1 << (n - 1).bit_length()
    product = np.fft.irfft(np.fft.rfft(recording, size) * np.conj(np.fft.rfft(expected, size)),
                           size)[: len(recording) - len(expected) + 1]
    energy = np.concatenate([[0.0], np.cumsum(recording.astype(np.float64) ** 2)])
    window = energy[len(expected):] - energy[: len(energy) - len(expected)]
    denominator = np.sqrt(np.maximum(window, 1e-12)) * np.linalg.norm(expected)
    return float(np.max(product / denominator))


def heard_audio(recording: Path, expected: np.ndarray, rate: int) -> float:
    """best_match of what the daemon played (at `rate`) in a phone recording file."""
    from sipassist.voice.asr import read_wav
    from sipassist.voice.resample import resample

    samples, recorded_rate = read_wav(recording)
    return best_match(samples, resample(expected, rate, recorded_rate))
