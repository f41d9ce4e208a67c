"""Caller voices for the phone-line test set, all offline.

Only one English Piper voice installs offline (joe), so the others are made from it and from
espeak-ng: Piper shifted in pitch and tempo by sox (a higher, quicker speaker and a lower,
slower one), and two espeak-ng voices (US male, British female variant), whose formant
synthesis is far from Piper's and from anything Whisper was trained on.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..voice.asr import read_wav, write_wav
from ..voice.resample import resample
from .line import SPEECH_RATE

# name: (engine, arguments)
VOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "piper": ("piper", ()),
    "piper-high": ("piper", ("pitch", "300", "tempo", "1.1")),  # sox effects
    "piper-low": ("piper", ("pitch", "-250", "tempo", "0.92")),
    "espeak-us": ("espeak", ("-v", "en-us", "-s", "165")),
    "espeak-gb-f": ("espeak", ("-v", "en-gb+f3", "-s", "150")),
}
LEAD_SECONDS, TAIL_SECONDS = 0.2, 0.4  # silence around the speech, as the endpointer leaves


class VoiceMissing(RuntimeError):
    """A program or model a voice needs is not installed."""


def _sox(samples: np.ndarray, effects: tuple[str, ...]) -> np.ndarray:
    if shutil.which("sox") is None:
        raise VoiceMissing("sox is not installed (apt-get install sox)")
    with tempfile.TemporaryDirectory() as tmp:
        source, shifted = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        write_wav(source, samples, SPEECH_RATE)
        subprocess.run(["sox", str(source), str(shifted), *effects], check=True,
                       capture_output=True, timeout=60)
        out, rate = read_wav(shifted)
    return resample(out, rate, SPEECH_RATE)


def _espeak(text: str, arguments: tuple[str, ...]) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        raise VoiceMissing("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", *arguments, "-w", str(path), text], check=True,
                       capture_output=True, timeout=60)
        samples, rate = read_wav(path)
    return resample(samples, rate, SPEECH_RATE)


class Speakers:
    """Speaks text in any of VOICES as 16 kHz float32, with silence around it."""

    def __init__(self, synthesizer=None) -> None:
        self._synthesizer = synthesizer  # a voice.tts.Synthesizer at 16 kHz, for Piper voices

    def speak(self, voice: str, text: str) -> np.ndarray:
        engine, arguments = VOICES[voice]
        if engine == "piper":
            if self._synthesizer is None:
                raise VoiceMissing("Piper voices need the Piper model")
            speech = self._synthesizer.synthesize(text)
            if arguments:
                speech = _sox(speech, arguments)
        else:
            speech = _espeak(text, arguments)
        peak = float(np.max(np.abs(speech))) if speech.size else 0.0
        if peak > 0:
            speech = speech * np.float32(0.7 / peak)  # the same level for every voice
        silence = np.zeros(int(LEAD_SECONDS * SPEECH_RATE), np.float32)
        tail = np.zeros(int(TAIL_SECONDS * SPEECH_RATE), np.float32)
        return np.concatenate([silence, speech.astype(np.float32), tail])
