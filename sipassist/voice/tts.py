"""Text to speech with a Piper voice, resampled to the switchboard rate and cached.

Calls mostly repeat the same prompts ("Press 1 to confirm..."), so finished audio is kept in a
small LRU cache, bounded in entries and in bytes ([models] tts_cache_mb). The Piper voice is
loaded once and shared; one lock serialises its use because
neither the onnxruntime session nor piper's espeak phonemizer promises re-entrancy.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from typing import Iterator

import numpy as np
import onnxruntime
from piper import PiperConfig, PiperVoice, SynthesisConfig

from ..models import ResolvedModel
from .resample import resample

log = logging.getLogger(__name__)

PEAK_LIMIT = 0.95  # headroom so G.711 encoding and later mixing never clip
ORT_THREADS = 2  # leaves cores for Whisper and the audio thread on a Raspberry Pi


def _load_voice(voice: ResolvedModel, threads: int) -> PiperVoice:
    config_path = voice.path.with_name(voice.path.name + ".json")
    # PiperVoice.load offers no session options, so build the session here to cap its threads.
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    session = onnxruntime.InferenceSession(
        str(voice.path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    try:
        return PiperVoice(session=session, config=config)
    except TypeError:  # a piper release that changed PiperVoice's fields: use its own loader
        log.warning("piper's PiperVoice changed; loading with default onnxruntime threads")
        return PiperVoice.load(voice.path, config_path=config_path)


def cache_key(text: str, speed: float) -> str:
    """A text's key in a speech cache: the text itself at the voice's own speed."""
    return text if speed == 1.0 else f"{speed:g}\x00{text}"


def _limit(audio: np.ndarray) -> np.ndarray:
    """Scale down to PEAK_LIMIT if the audio would clip; never amplify."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > PEAK_LIMIT:
        audio = audio * np.float32(PEAK_LIMIT / peak)
    return audio.astype(np.float32, copy=False)


class Synthesizer:
    """Piper speech as float32 mono at `sample_rate`."""

    def __init__(self, voice: ResolvedModel, sample_rate: int = 16000, cache_size: int = 64,
                 cache_bytes: int = 16 << 20):
        self.voice = voice
        self.sample_rate = sample_rate
        self.cache_size = cache_size  # entries at most
        # and bytes at most: a long LLM sentence weighs 100 times a "Goodbye!"
        self.cache_bytes = cache_bytes
        self._cached_bytes = 0
        self.cache_hits = 0  # calls answered from the cache (or by waiting on another caller)
        self.syntheses = 0  # calls that ran Piper for the whole text
        started = time.perf_counter()
        self._piper = _load_voice(voice, ORT_THREADS)
        self.voice_rate: int = self._piper.config.sample_rate
        # Piper's own peak normalisation would boost every sentence to full scale; _limit instead.
        self._syn_config = SynthesisConfig(normalize_audio=False)
        self._piper_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._pending: dict[str, Future[np.ndarray]] = {}
        log.info(
            "loaded Piper voice %s (%d Hz) from %s in %.2f s",
            voice.name, self.voice_rate, voice.source, time.perf_counter() - started,
        )

    def _sentences(self, text: str, rate: int | None = None,
                   speed: float = 1.0) -> Iterator[np.ndarray]:
        """Audio per sentence at `rate` (default `sample_rate`), not yet level-limited."""
        config = self._syn_config if speed == 1.0 else SynthesisConfig(
            normalize_audio=False, length_scale=1.0 / speed)
        chunks = iter(self._piper.synthesize(text, syn_config=config))
        while True:
            # Lock per step, not per generator, so a slow consumer never blocks other callers.
            with self._piper_lock:
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield resample(chunk.audio_float_array, chunk.sample_rate, rate or self.sample_rate)

    def stream(self, text: str, rate: int | None = None, speed: float = 1.0
               ) -> Iterator[np.ndarray]:
        """Per-sentence chunks at `rate` (default `sample_rate`), each limited on its own
        (bypasses the cache); `speed` > 1 speaks faster."""
        for audio in self._sentences(text, rate, speed):
            yield _limit(audio)

    def _render(self, text: str, speed: float = 1.0) -> np.ndarray:
        started = time.perf_counter()
        parts = list(self._sentences(text, speed=speed))
        audio = _limit(np.concatenate(parts)) if parts else np.zeros(0, np.float32)
        elapsed = time.perf_counter() - started
        log.debug(
            "synthesised %.2f s of speech in %.2f s: %r",
            audio.size / self.sample_rate, elapsed, text[:60],
        )
        return audio

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        """The whole text as one read-only float32 array; repeated texts come from the cache.
        `speed` > 1 speaks faster (an agent's persona)."""
        key = cache_key(text, speed)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return cached
            pending = self._pending.get(key)
            owner = pending is None
            if owner:
                pending = self._pending[key] = Future()
            else:
                self.cache_hits += 1
        assert pending is not None
        if not owner:  # the same text is being synthesised by another thread: share its result
            return pending.result()

        try:
            audio = self._render(text, speed)
            audio.setflags(write=False)  # shared by every caller, so nobody may edit it in place
        except BaseException as exc:
            with self._cache_lock:
                del self._pending[key]
            pending.set_exception(exc)
            raise
        with self._cache_lock:
            self.syntheses += 1
            if audio.nbytes <= self.cache_bytes:
                self._cache[key] = audio
                self._cached_bytes += audio.nbytes
            while self._cache and (len(self._cache) > self.cache_size
                                   or self._cached_bytes > self.cache_bytes):
                self._cached_bytes -= self._cache.popitem(last=False)[1].nbytes
            del self._pending[key]
        pending.set_result(audio)
        return audio
