"""A phone line's codecs and background noise, applied offline to 16 kHz speech.

G.711 mu-law and A-law (8 kHz, narrowband) as G.711 defines them; G.722 (16 kHz wideband,
64 kbit/s) through the `G722` package (sippy's libg722, public domain) when it is installed.
Noise is pink (1/f), the colour of most room and street noise, at a given SNR against the
speech's own level.
"""

from __future__ import annotations

import numpy as np

from ..voice.resample import resample, to_float32, to_pcm16
from .sentences import PHONE_RATE, mulaw_decode, mulaw_encode

SPEECH_RATE = 16000
CODECS = ("ulaw", "alaw", "g722")


class CodecMissing(RuntimeError):
    """The codec's library is not installed here."""


# --- G.711 A-law ----------------------------------------------------------------------------

_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def alaw_encode(samples: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] to G.711 A-law bytes (uint8)."""
    x = np.frombuffer(to_pcm16(samples), "<i2").astype(np.int32) >> 3  # 13-bit
    negative = x < 0
    mask = np.where(negative, 0x55, 0xD5)
    x = np.where(negative, -x - 1, x)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, x)  # first end >= x
    shift = np.where(segment < 2, 1, segment)
    code = (np.minimum(segment, 7) << 4) | ((x >> np.minimum(shift, 12)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def alaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 A-law bytes to float32 audio."""
    a = codes.astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    segment = (a & 0x70) >> 4
    t = np.where(segment == 0, t + 8, t + 0x108)
    t = np.where(segment > 1, t << np.maximum(segment - 1, 0), t)
    linear = np.where(a & 0x80, t, -t)
    return to_float32(linear.astype(np.int16))


# --- the line -------------------------------------------------------------------------------

def through(codec: str, samples: np.ndarray, rate: int = SPEECH_RATE) -> tuple[np.ndarray, int]:
    """`samples` as the far end of a call hears them: (float32 audio, its rate)."""
    if codec == "ulaw":
        return mulaw_decode(mulaw_encode(resample(samples, rate, PHONE_RATE))), PHONE_RATE
    if codec == "alaw":
        return alaw_decode(alaw_encode(resample(samples, rate, PHONE_RATE))), PHONE_RATE
    if codec == "g722":
        try:
            from G722 import G722
        except ImportError:
            raise CodecMissing("G.722 needs the G722 package (pip install G722)") from None
        wide = np.frombuffer(to_pcm16(resample(samples, rate, SPEECH_RATE)), "<i2")
        coded = G722(SPEECH_RATE, 64000).encode(wide)
        decoded = np.asarray(G722(SPEECH_RATE, 64000).decode(coded), np.int16)
        return to_float32(decoded), SPEECH_RATE
    raise ValueError(f"unknown codec {codec!r}; known: {', '.join(CODECS)}")


def pink_noise(size: int, seed: int) -> np.ndarray:
    """Unit-RMS pink noise: white noise shaped to 1/f power in the frequency domain."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(size))
    frequencies = np.arange(spectrum.size, dtype=np.float64)
    frequencies[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(frequencies), n=size)
    return (noise / (np.sqrt(np.mean(noise**2)) or 1.0)).astype(np.float32)


def with_noise(samples: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Speech plus pink noise `snr_db` below the speech's RMS (over its voiced part)."""
    level = np.abs(samples)
    voiced = samples[level > 0.02 * (float(level.max()) if level.size else 0.0)]
    rms = float(np.sqrt(np.mean(voiced**2))) if voiced.size else 0.0
    noise = pink_noise(samples.size, seed) * np.float32(rms / 10 ** (snr_db / 20))
    mixed = samples + noise
    peak = float(np.max(np.abs(mixed))) if mixed.size else 0.0
    return (mixed / peak * 0.95 if peak > 0.95 else mixed).astype(np.float32)
