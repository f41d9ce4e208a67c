"""Audio helpers shared by the tests: a phone line's mu-law round trip and a WAV writer."""

from __future__ import annotations

import numpy as np

from sipassist.bench.sentences import PHONE_RATE, mulaw_decode, mulaw_encode, phone_line
from sipassist.voice.asr import write_wav
from sipassist.voice.audio_files import encode_wav as wav_bytes  # an upload's body

__all__ = ["PHONE_RATE", "mulaw_decode", "mulaw_encode", "phone_line", "wav_bytes", "write_wav"]


def best_match(recording: np.ndarray, expected: np.ndarray) -> float:
    """The highest normalised cross-correlation of `expected` anywhere in `recording`."""
    return match(recording, expected)[0]


def match(recording: np.ndarray, expected: np.ndarray) -> tuple[float, int]:
    """(best normalised cross-correlation, the sample offset where it is) of `expected`.

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
    scores = product / denominator
    best = int(np.argmax(scores))
    return float(scores[best]), best


PIECE_SECONDS = 3.0


def heard_audio(recording: Path, expected: np.ndarray, rate: int) -> float:
    """How surely what the daemon played (at `rate`) is in a phone recording file.

    Long audio is matched in 3 s pieces and the median score taken: a dropout on a loaded
    machine shifts everything after it, which would sink one long match but only one piece.
    """
    from sipassist.voice.asr import read_wav
    from sipassist.voice.resample import resample

    samples, recorded_rate = read_wav(recording)
    wanted = resample(expected, rate, recorded_rate)
    size = int(PIECE_SECONDS * recorded_rate)
    count = max(1, round(len(wanted) / size))
    pieces = np.array_split(wanted, count)
    return float(np.median([match(samples, piece)[0] for piece in pieces]))


def heard_at(recording: Path, expected: np.ndarray, rate: int) -> tuple[float, float]:
    """(score, seconds into the recording) of what the daemon played, as `match`."""
    from sipassist.voice.asr import read_wav
    from sipassist.voice.resample import resample

    samples, recorded_rate = read_wav(recording)
    score, offset = match(samples, resample(expected, rate, recorded_rate))
    return score, offset / recorded_rate
