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
