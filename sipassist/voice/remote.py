"""ASR and TTS on another server that speaks the OpenAI audio API, with the local model behind.

`[models] asr_backend = "remote"` sends each utterance to `<asr_url>/v1/audio/transcriptions`
(multipart WAV), `tts_backend = "remote"` each sentence to `<tts_url>/v1/audio/speech` (WAV
back): a GPU box running an OpenAI-compatible speech server, or another sipassist. When the
remote fails (down, slow, an error), the local model answers if one is loaded and the call goes
on; the remote is then left alone for `retry_seconds` so each sentence does not wait a timeout.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from .audio_files import AudioError, decode, encode_wav
from .resample import resample, to_float32
from .tts import cache_key

log = logging.getLogger(__name__)

Speak = Callable[[str], np.ndarray]
Transcribe = Callable[[np.ndarray, int], str]


class RemoteError(RuntimeError):
    pass


class _Remote:
    def __init__(self, url: str, api_key: str, timeout: float) -> None:
        self.base = url.rstrip("/")
        if not self.base.endswith("/v1"):
            self.base += "/v1"
        self.api_key = api_key
        self.timeout = timeout

    def post(self, path: str, body: bytes, content_type: str) -> bytes:
        headers = {"Content-Type": content_type}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.base + path, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise RemoteError(f"{self.base}{path}: HTTP {exc.code} {detail}") from None
        except (OSError, ValueError) as exc:  # refused, reset, timeout, bad URL
            raise RemoteError(f"{self.base}{path}: {getattr(exc, 'reason', exc)}") from None


class RemoteTranscriber(_Remote):
    def __init__(self, url: str, model: str, api_key: str = "", timeout: float = 10.0) -> None:
        super().__init__(url, api_key, timeout)
        self.model = model

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> str:
        wav = encode_wav(to_float32(np.asarray(samples)), sample_rate)
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in (("model", self.model), ("language", "en"),
                            ("response_format", "json")):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                         f"{value}\r\n".encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="utterance.wav"\r\nContent-Type: audio/wav\r\n\r\n'.encode()
                     + wav + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        raw = self.post("/audio/transcriptions", b"".join(parts),
                        f"multipart/form-data; boundary={boundary}")
        try:
            return str(json.loads(raw)["text"])
        except (ValueError, KeyError, TypeError):
            raise RemoteError(f"{self.base}/audio/transcriptions: no text in {raw[:100]!r}") from None


class RemoteSynthesizer(_Remote):
    """Speech from the remote at `sample_rate`, with a small cache as the local one has."""

    def __init__(self, url: str, model: str, voice: str, sample_rate: int, api_key: str = "",
                 timeout: float = 10.0, cache_size: int = 64) -> None:
        super().__init__(url, api_key, timeout)
        self.model, self.voice, self.sample_rate = model, voice, sample_rate
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        key = cache_key(text, speed)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        request = {"model": self.model, "input": text, "voice": self.voice,
                   "response_format": "wav"}
        if speed != 1.0:
            request["speed"] = speed  # the OpenAI speech API's own field
        body = json.dumps(request).encode()
        raw = self.post("/audio/speech", body, "application/json")
        try:
            samples, rate = decode(raw)
        except AudioError as exc:
            raise RemoteError(f"{self.base}/audio/speech: {exc}") from None
        audio = resample(samples, rate, self.sample_rate)
        audio.setflags(write=False)
        with self._lock:
            self._cache[key] = audio
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return audio


class WithFallback:
    """The remote engine's call, else the local one's (if loaded); the remote rests after a
    failure. `on_fallback(kind)` counts each fallback (metrics)."""

    def __init__(self, kind: str, remote: Callable, local: Callable | None,
                 retry_seconds: float = 30.0,
                 on_fallback: Callable[[str], None] | None = None) -> None:
        self.kind = kind
        self.remote = remote
        self.local = local
        self.retry_seconds = retry_seconds
        self.on_fallback = on_fallback
        self._resting_until = 0.0

    def __call__(self, *args, **kwargs):
        if time.monotonic() >= self._resting_until or self.local is None:
            try:
                return self.remote(*args, **kwargs)
            except RemoteError as exc:
                if self.local is None:
                    raise
                self._resting_until = time.monotonic() + self.retry_seconds
                log.warning("remote %s failed (%s); using the local model for %.0f s",
                            self.kind, exc, self.retry_seconds)
        if self.on_fallback:
            self.on_fallback(self.kind)
        return self.local(*args, **kwargs)
