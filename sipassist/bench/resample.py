"""`sipassist bench resample`: the resampler (voice/resample.py, libsoxr) on the daemon's hops.

For each hop (Piper's 22050 Hz to 16 kHz, 16 kHz to the 8 kHz line and back):
- CPU per call-second: process time to resample S seconds of audio, in one piece and in
  20 ms blocks through soxr's streaming ResampleStream (state kept across blocks);
- quality: SNR of a 1 kHz sine after the hop (against the exact sine), the alias left of a
  tone above the lower Nyquist (5 kHz going to 8 kHz: anything left is aliasing), and the
  SNR of a 16k -> 8k -> 16k round trip of band-limited noise (below 3.4 kHz, the phone band).
The numpy windowed sinc it replaced measured 1.0-1.4 ms CPU per audio second in one piece
(2.2-2.7 in 20 ms blocks), 96 dB sine SNR, -100 dB alias, 77 dB round trip (26 dB in blocks);
soxr 0.05-0.2 ms, 133 dB, -147 dB, 129 dB (README, Benchmarks).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from ..voice.resample import resample

HOPS = ((22050, 16000), (16000, 8000), (8000, 16000))
BLOCK_SECONDS = 0.02


def _soxr_blocks(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    import soxr

    stream = soxr.ResampleStream(src, dst, 1, dtype="float32", quality="HQ")
    size = int(src * BLOCK_SECONDS)
    parts = [stream.resample_chunk(x[i:i + size], last=i + size >= x.size)
             for i in range(0, x.size, size)]
    return np.concatenate(parts)


METHODS: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "soxr": resample, "soxr-20ms": _soxr_blocks,
}


def _cpu_per_second(method, x: np.ndarray, src: int, dst: int) -> float:
    """Process CPU milliseconds per second of audio (the best of three runs)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        method(x, src, dst)
        best = min(best, time.process_time() - started)
    return 1000 * best / (x.size / src)


def _align(out: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two signals at their best lag (a resampler may delay), middle part only."""
    n = min(out.size, want.size)
    out, want = out[:n], want[:n]
    margin = n // 10
    core = want[margin:n - margin]
    best, lag = -1.0, 0
    for shift in range(-64, 65):
        piece = out[margin + shift:n - margin + shift]
        score = float(np.dot(piece, core))
        if score > best:
            best, lag = score, shift
    return out[margin + lag:n - margin + lag], core


def _snr_db(out: np.ndarray, want: np.ndarray) -> float:
    got, core = _align(out, want)
    noise = got - core
    return round(float(10 * np.log10(np.sum(core ** 2) / max(np.sum(noise ** 2), 1e-20))), 1)


def _sine(freq: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _phone_band_noise(rate: int, seconds: float) -> np.ndarray:
    spectrum = np.fft.rfft(np.random.default_rng(7).standard_normal(int(rate * seconds)))
    freqs = np.fft.rfftfreq(int(rate * seconds), 1 / rate)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    x = np.fft.irfft(spectrum, int(rate * seconds))
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def quality(method) -> dict[str, float]:
    seconds = 2.0
    rows = {}
    for src, dst in HOPS:
        rows[f"sine_1k_snr_db_{src}_{dst}"] = _snr_db(method(_sine(1000, src, seconds), src,
                                                             dst), _sine(1000, dst, seconds))
    tone = method(_sine(5000, 16000, seconds), 16000, 8000)  # above 4 kHz: must vanish
    rows["alias_5k_to_8k_db"] = round(float(20 * np.log10(
        max(float(np.sqrt(np.mean(tone[800:-800] ** 2))), 1e-9) / (0.5 / np.sqrt(2)))), 1)
    noise = _phone_band_noise(16000, seconds)
    rows["roundtrip_16k_8k_16k_snr_db"] = _snr_db(
        method(method(noise, 16000, 8000), 8000, 16000), noise)
    return rows


def run(seconds: float = 30.0, json_path: Path | None = None, out: TextIO = sys.stdout) -> int:
    speechlike = {src: _phone_band_noise(src, seconds) for src in {h[0] for h in HOPS}}
    results = {}
    for name, method in METHODS.items():
        cpu = {f"{src}_{dst}": round(_cpu_per_second(method, speechlike[src], src, dst), 2)
               for src, dst in HOPS}
        results[name] = {"cpu_ms_per_audio_second": cpu, **quality(method)}
    print(f"CPU ms per second of audio ({seconds:.0f} s per run, best of 3) and quality",
          file=out)
    hops = [f"{s // 1000 if s % 1000 == 0 else s / 1000:g}k>{d // 1000}k" for s, d in HOPS]
    print(f"{'method':<10} " + " ".join(f"{h:>10}" for h in hops)
          + f" {'sine SNR':>9} {'alias':>8} {'round trip':>11}", file=out)
    for name, row in results.items():
        cpu = " ".join(f"{v:>10.2f}" for v in row["cpu_ms_per_audio_second"].values())
        sine = min(v for k, v in row.items() if k.startswith("sine_"))
        print(f"{name:<10} {cpu} {sine:>6.1f} dB {row['alias_5k_to_8k_db']:>5.1f} dB "
              f"{row['roundtrip_16k_8k_16k_snr_db']:>8.1f} dB", file=out)
    print("(sine SNR: the worst hop; alias: a 5 kHz tone left after 16k>8k, re. the tone)",
          file=out)
    if json_path is None:
        json_path = Path("bench-results") / f"resample-{time.strftime('%Y%m%d-%H%M%S')}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"seconds": seconds, "methods": results}, indent=1) + "\n")
    print(f"wrote {json_path}", file=out)
    return 0
