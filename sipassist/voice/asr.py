"""Speech to text with a local CTranslate2 Whisper model (faster-whisper), plus WER scoring."""

from __future__ import annotations

import io
import logging
import re
import struct
import time
import wave
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel

from ..models import ResolvedModel
from .resample import resample, to_float32

log = logging.getLogger(__name__)

WHISPER_RATE = 16000


class Transcriber:
    """English transcription of short utterances on the CPU."""

    def __init__(self, model: ResolvedModel, cpu_threads: int = 2):
        self.model_info = model
        started = time.perf_counter()
        # A directory path never touches the hub; local_files_only makes that explicit.
        self._model = WhisperModel(
            str(model.path),
            device="cpu",
            compute_type="int8",
            cpu_threads=cpu_threads,
            local_files_only=True,
        )
        log.info(
            "loaded Whisper %s from %s in %.2f s",
            model.name, model.source, time.perf_counter() - started,
        )

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> str:
        """Text of mono audio at any rate (float in [-1, 1] or int16)."""
        audio = resample(to_float32(np.asarray(samples)), sample_rate, WHISPER_RATE)
        if audio.size == 0:
            return ""
        started = time.perf_counter()
        segments, _info = self._model.transcribe(
            audio, language="en", beam_size=1, vad_filter=False
        )
        text = " ".join(segment.text.strip() for segment in segments).strip()
        log.debug(
            "transcribed %.2f s in %.2f s: %r",
            audio.size / WHISPER_RATE, time.perf_counter() - started, text,
        )
        return text

    def transcribe_file(self, path: Path) -> str:
        samples, rate = read_wav(path)
        return self.transcribe(samples, rate)


def _repair_header(raw: bytes) -> bytes:
    """Make the RIFF and data sizes match the file, so `wave` reads every frame present.

    baresip's sndfile recorder writes the sizes only when the call ends: while a call is live
    they are 0 or stale. A header is trusted only when its RIFF size matches the file length.
    """
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    riff_size = struct.unpack_from("<I", raw, 4)[0]
    if riff_size + 8 in (len(raw), len(raw) - 1):  # -1: an odd-sized last chunk's pad byte
        return raw
    fixed = bytearray(raw)
    struct.pack_into("<I", fixed, 4, len(raw) - 8)
    offset = 12
    while offset + 8 <= len(raw):
        chunk_id = raw[offset : offset + 4]
        size = struct.unpack_from("<I", raw, offset + 4)[0]
        if chunk_id == b"data":
            struct.pack_into("<I", fixed, offset + 4, len(raw) - offset - 8)  # to end of file
            return bytes(fixed)
        offset += 8 + size + (size & 1)
    raise ValueError("no data chunk")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Float32 mono samples and rate of a 16-bit PCM WAV, even one still being written."""
    raw = _repair_header(Path(path).read_bytes())
    with wave.open(io.BytesIO(raw), "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        if width != 2:
            raise ValueError(f"{path}: {8 * width}-bit audio; expected 16-bit PCM")
        frames = wav.readframes(wav.getnframes())
    frames = frames[: len(frames) - len(frames) % (2 * channels)]  # drop a torn last frame
    samples = to_float32(frames)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


_NON_WORD = re.compile(r"[^a-z0-9']+")


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation: "Don't-stop, OK?" -> ["dont", "stop", "ok"]."""
    return [word.replace("'", "") for word in _NON_WORD.split(text.lower()) if word.strip("'")]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, ignoring case and punctuation."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    # Levenshtein distance over words, one row at a time.
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        current = [i]
        for j, hyp_word in enumerate(hyp, 1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution or match
                )
            )
        previous = current
    return previous[-1] / len(ref)
