"""Band-limited resampling and PCM conversion in plain numpy.

Piper voices speak at 22050 Hz, Whisper wants 16 kHz and a phone line carries 8 kHz, so audio is
resampled at every hop. A Kaiser-windowed sinc keeps pitch and duration and stops aliasing (a
naive interpolation folds the 4-8 kHz band back into speech when going down to 8 kHz).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from math import ceil, gcd
from typing import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

log = logging.getLogger(__name__)

ZERO_CROSSINGS = 32  # sinc lobes kept on each side of the centre tap
ROLLOFF = 0.92  # cutoff as a fraction of the lower Nyquist: the transition band ends below it
KAISER_BETA = 8.6  # ~85 dB stop-band attenuation
_CHUNK = 4096  # output samples per vectorised step; bounds the (chunk, taps) temporaries
_MAX_TABLE_PHASES = 4096  # beyond this many distinct phases, compute kernels per chunk


def _kernel(frac: np.ndarray, scale: float, taps_per_side: int) -> np.ndarray:
    """Filter weights, one row per fractional position `frac` in [0, 1).

    Row r weights input samples base+1-K .. base+K for an output at time base + frac[r].
    """
    offsets = np.arange(1 - taps_per_side, taps_per_side + 1, dtype=np.float64)
    x = offsets[None, :] - frac[:, None]  # distance of each tap from the output instant
    half_width = ZERO_CROSSINGS / scale
    ratio = np.clip(x / half_width, -1.0, 1.0)
    window = np.i0(KAISER_BETA * np.sqrt(1.0 - ratio * ratio)) / np.i0(KAISER_BETA)
    window[np.abs(x) > half_width] = 0.0
    weights = scale * np.sinc(scale * x) * window
    # Exact unity gain at DC for every phase, so silence stays silence and levels do not ripple.
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.astype(np.float32)


@lru_cache(maxsize=16)
def _phase_table(up: int, scale: float, taps_per_side: int) -> np.ndarray:
    table = _kernel(np.arange(up, dtype=np.float64) / up, scale, taps_per_side)
    table.setflags(write=False)
    return table


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample mono float audio from `src_rate` to `dst_rate` (any integer rates).

    Output length is ceil(len * dst / src); sample n sits at input time n * src / dst, so there
    is no delay to compensate.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample expects mono 1-D audio, got shape {x.shape}")
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    if src_rate == dst_rate:
        return x
    if x.size == 0:
        return np.zeros(0, dtype=np.float32)

    common = gcd(src_rate, dst_rate)
    up, down = dst_rate // common, src_rate // common  # output n <-> input time n * down / up
    scale = min(1.0, dst_rate / src_rate) * ROLLOFF
    taps_per_side = ceil(ZERO_CROSSINGS / scale)
    taps = 2 * taps_per_side
    table = _phase_table(up, scale, taps_per_side) if up <= _MAX_TABLE_PHASES else None

    padded = np.concatenate(
        [np.zeros(taps_per_side, np.float32), x, np.zeros(taps_per_side + 1, np.float32)]
    )
    windows = sliding_window_view(padded, taps)  # a view: no copy of the input per tap
    out_len = -(-x.size * up // down)
    out = np.empty(out_len, dtype=np.float32)
    for start in range(0, out_len, _CHUNK):
        n = np.arange(start, min(start + _CHUNK, out_len), dtype=np.int64)
        base, phase = np.divmod(n * down, up)
        if table is not None:
            weights = table[phase]
        else:
            weights = _kernel(phase / up, scale, taps_per_side)
        out[n[0] : n[-1] + 1] = np.einsum("ij,ij->i", windows[base + 1], weights)
    # The filter itself never clips; this only guards int16 conversion against Gibbs overshoot.
    return np.clip(out, -1.0, 1.0, out=out)


def to_float32(pcm16: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Signed 16-bit little-endian PCM (bytes or int16 array) to float32 in [-1, 1)."""
    if isinstance(pcm16, np.ndarray):
        if pcm16.dtype.kind == "f":
            return pcm16.astype(np.float32, copy=False)
        ints = pcm16.astype(np.int16, copy=False)
    else:
        ints = np.frombuffer(pcm16, dtype="<i2")
    return ints.astype(np.float32) / 32768.0


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float audio to signed 16-bit little-endian PCM bytes, clipping out-of-range samples."""
    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return np.round(x * 32767.0).astype("<i2").tobytes()


def blocks(samples: np.ndarray, block_size: int) -> Iterator[np.ndarray]:
    """Fixed-size float32 blocks (e.g. 20 ms JACK periods); the last one is zero-padded."""
    if block_size <= 0:
        raise ValueError(f"block_size must be positive, got {block_size}")
    x = np.asarray(samples, dtype=np.float32)
    for start in range(0, x.size, block_size):
        block = x[start : start + block_size]
        if block.size < block_size:
            block = np.concatenate([block, np.zeros(block_size - block.size, np.float32)])
        else:
            block = block.copy()  # callers may keep or modify blocks; never alias the input
        yield block
