"""The box's models behind the API: checks, the calls-first gate, metrics and rate-limit charges.

The route modules (llms, asr, tts, openai_compat) only translate HTTP shapes; what a request
may ask and how the model is used is decided here, once for the native and the OpenAI paths.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from ..config import ModelApiSettings
from ..metrics import Metrics
from ..voice.asr import FULL_PATH_SECONDS, Transcriber
from ..voice.completion import Completer, PromptTooLong, Usage
from ..voice.gate import ModelBusy, ModelGates
from ..voice.tts import Synthesizer
from .errors import ApiError
from .limits import charge, meter

log = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
ENGLISH = ("en", "english")
# OpenAI's names, so its clients work unchanged: they all mean the box's own model or voice.
OPENAI_ASR_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
OPENAI_TTS_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage",
                 "shimmer", "verse")
SPEED_RANGE = (0.25, 4.0)
RATE_RANGE = (8000, 48000)


@dataclass
class ModelService:
    settings: ModelApiSettings
    gates: ModelGates
    metrics: Metrics | None = None
    # The API's LLM context is loaded on first use (most boxes never need it).
    llm_name: str | None = None
    load_completer: Callable[[], Completer] | None = None
    llm_context: int = 2048
    transcriber: Transcriber | None = None
    synthesizer: Synthesizer | None = None
    _completer: Completer | None = field(default=None, init=False, repr=False)
    _load_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def completer(self) -> Completer:
        with self._load_lock:
            if self._completer is None:
                assert self.load_completer is not None
                try:
                    self._completer = self.load_completer()
                except Exception as exc:
                    log.exception("cannot load the API's LLM context")
                    raise ApiError(503, f"the language model could not be loaded: {exc}") \
                        from None
            return self._completer

    # -- names --------------------------------------------------------------------------------

    @property
    def asr_name(self) -> str | None:
        return f"whisper-{self.transcriber.model_info.name}" if self.transcriber else None

    @property
    def tts_name(self) -> str | None:
        return "piper" if self.synthesizer else None

    @property
    def voice(self) -> str | None:
        return self.synthesizer.voice.name if self.synthesizer else None

    def models(self, kind: str) -> list[dict]:
        if kind == "llm" and self.llm_name:
            return [{"id": self.llm_name, "type": "llm", "context": self.llm_context,
                     "max_tokens": self.settings.llm_max_tokens}]
        if kind == "asr" and self.transcriber:
            return [{"id": self.asr_name, "type": "asr", "languages": ["en"],
                     "max_seconds": self.settings.asr_max_seconds}]
        if kind == "tts" and self.synthesizer:
            return [{"id": self.tts_name, "type": "tts", "voices": [self.voice],
                     "sample_rate": self.synthesizer.voice_rate,
                     "max_characters": self.settings.tts_max_characters}]
        return []

    @staticmethod
    def _check_model(kind: str, asked: object, ours: str | None, aliases: tuple = ()) -> None:
        if ours is None:
            raise ApiError(503, f"no {kind.upper()} model is loaded on this box")
        if asked is None:
            return
        if not isinstance(asked, str) or (asked != ours and asked not in aliases):
            listing = "/v1/llms/models" if kind == "llm" else f"/v1/{kind}/models"
            raise ApiError(400, f"unknown {kind.upper()} model {asked!r}; this box has: "
                                f"{', '.join([ours, *aliases])} (GET {listing})")

    # -- the gate, metrics and charges ------------------------------------------------------

    def _observed(self, model: str, status: int, started: float) -> None:
        if self.metrics:
            self.metrics.api_requests.labels(model, str(status)).inc()
            if status == 200:
                self.metrics.api_seconds.labels(model).observe(time.monotonic() - started)

    def _turn(self, model: str) -> ExitStack:
        """This request's turn on `model`, entered now (ModelBusy -> 503 before any output)."""
        stack = ExitStack()
        try:
            stack.enter_context(self.gates.api(model))
        except ModelBusy as exc:
            self._observed(model, 503, 0)
            raise ApiError(503, exc.detail, {"Retry-After": str(exc.retry_after)}) from None
        return stack

    # -- LLM ---------------------------------------------------------------------------------

    def messages(self, value: object) -> list[dict[str, str]]:
        if not isinstance(value, list) or not value:
            raise ApiError(400, "messages must be a non-empty list of objects like "
                                '{"role": "user", "content": "Hello"}')
        out = []
        for index, message in enumerate(value):
            where = f"messages[{index}]"
            if not isinstance(message, dict):
                raise ApiError(400, f"{where} must be an object with role and content")
            role, content = message.get("role"), message.get("content")
            if role not in ROLES:
                raise ApiError(400, f"{where}.role must be one of {', '.join(ROLES)}, not "
                                    f"{role!r}")
            if isinstance(content, list):  # OpenAI's content parts: only text here
                texts = [part.get("text") for part in content
                         if isinstance(part, dict) and part.get("type") == "text"]
                if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
                    raise ApiError(400, f"{where}.content: only text parts are supported")
                content = "".join(texts)
            if not isinstance(content, str):
                raise ApiError(400, f"{where}.content must be a string, not "
                                    f"{type(content).__name__}")
            out.append({"role": role, "content": content})
        if not any(m["role"] == "user" for m in out):
            raise ApiError(400, "messages must hold at least one message with role \"user\"")
        return out

    def completion(self, messages: list[dict[str, str]], model: object = None,
                   max_tokens: object = None, temperature: object = None) -> Completion:
        """A started completion (its turn on the model taken), to iterate or collect."""
        self._check_model("llm", model, self.llm_name)
        limit = self.settings.llm_max_tokens
        if max_tokens is None:
            max_tokens = min(self.settings.llm_default_max_tokens, limit)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or \
                not 1 <= max_tokens <= limit:
            raise ApiError(400, f"max_tokens must be a whole number from 1 to {limit}")
        if temperature is None:
            temperature = 0.7
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
                not 0 <= temperature <= 2:
            raise ApiError(400, "temperature must be a number from 0 to 2")
        try:
            self.completer.check_fits(messages, max_tokens)
        except PromptTooLong as exc:
            raise ApiError(400, str(exc)) from None
        started = time.monotonic()
        stack = self._turn("llm")
        pieces = self.gates.api_slices(
            "llm", self.completer.stream(messages, max_tokens, float(temperature)))
        return Completion(self, pieces, stack, started)

    # -- ASR ---------------------------------------------------------------------------------

    def transcribe(self, samples: np.ndarray, rate: int, model: object = None,
                   language: object = None, prompt: object = None) -> dict:
        self._check_model("asr", model, self.asr_name, OPENAI_ASR_MODELS)
        if language not in (None, "") and (not isinstance(language, str)
                                          or language.lower() not in ENGLISH):
            raise ApiError(400, f"language {language!r} is not available: this box's Whisper "
                                "model is set up for English (\"en\")")
        if prompt is not None and not isinstance(prompt, str):
            raise ApiError(400, "prompt must be a string")
        duration = samples.size / rate
        if duration > self.settings.asr_max_seconds:
            raise ApiError(413, f"the audio is {duration:.0f} s long; the limit is "
                                f"{self.settings.asr_max_seconds:.0f} s: send shorter pieces")
        assert self.transcriber is not None
        started = time.monotonic()
        with self._turn("asr"):
            try:
                if not prompt and duration <= FULL_PATH_SECONDS:
                    with self.gates.api_slice("asr"):
                        text = self.transcriber.transcribe_detailed(samples, rate).text
                    segments = [{"start": 0.0, "end": round(duration, 2), "text": text}] \
                        if text else []
                else:
                    segments = [{"start": round(s, 2), "end": round(e, 2), "text": t}
                                for s, e, t in self.gates.api_slices(
                                    "asr", self.transcriber.segments(samples, rate, prompt))]
                    text = " ".join(segment["text"] for segment in segments)
            except ModelBusy as exc:
                self._observed("asr", 503, started)
                raise ApiError(503, exc.detail, {"Retry-After": str(exc.retry_after)}) from None
        elapsed = time.monotonic() - started
        self._observed("asr", 200, started)
        if self.metrics:
            self.metrics.audio_seconds.labels("asr").inc(duration)
        charge(audio_seconds=duration)  # the caller's ASH/ASD
        return {"text": text, "language": "en", "duration": round(duration, 3),
                "segments": segments, "execution_time": round(elapsed, 3)}

    # -- TTS ---------------------------------------------------------------------------------

    def synthesize(self, text: object, voice: object = None, speed: object = None,
                   sample_rate: object = None, model: object = None,
                   openai: bool = False) -> tuple[np.ndarray, int]:
        """(float32 mono samples, rate) of `text` (OpenAI's `input`)."""
        name = "input" if openai else "text"
        self._check_model("tts", model, self.tts_name, OPENAI_TTS_MODELS)
        assert self.synthesizer is not None
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, f"{name} is required: a non-empty string to speak")
        if len(text) > self.settings.tts_max_characters:
            raise ApiError(413, f"{name} is {len(text)} characters; the limit is "
                                f"{self.settings.tts_max_characters}: split it into requests")
        voices = (self.voice, *OPENAI_VOICES) if openai else (self.voice,)
        if voice is not None and voice not in voices:
            raise ApiError(400, f"unknown voice {voice!r}; this box has: {self.voice}")
        speed = 1.0 if speed is None else speed
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or \
                not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
            raise ApiError(400, f"speed must be a number from {SPEED_RANGE[0]} to "
                                f"{SPEED_RANGE[1]} (1 is normal)")
        rate = self.synthesizer.voice_rate if sample_rate is None else sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int) or \
                not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
            raise ApiError(400, f"sample_rate must be a whole number of Hz from {RATE_RANGE[0]}"
                                f" to {RATE_RANGE[1]}")
        started = time.monotonic()
        with self._turn("tts"):
            try:
                parts = list(self.gates.api_slices(
                    "tts", self.synthesizer.stream(text, rate=rate, speed=float(speed))))
            except ModelBusy as exc:
                self._observed("tts", 503, started)
                raise ApiError(503, exc.detail, {"Retry-After": str(exc.retry_after)}) from None
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        self._observed("tts", 200, started)
        seconds = audio.size / rate
        if self.metrics:
            self.metrics.audio_seconds.labels("tts").inc(seconds)
        charge(audio_seconds=seconds)
        return audio, rate


class Completion:
    """An LLM completion under way: iterate for text pieces; `usage` is set at the end."""

    def __init__(self, service: ModelService, pieces: Iterator[str | Usage], stack: ExitStack,
                 started: float) -> None:
        self.service = service
        self.model = service.llm_name
        self.created = int(time.time())
        self.usage: Usage | None = None
        self.execution_time = 0.0
        self._pieces = pieces
        self._stack = stack
        self._started = started
        self._status = 500  # until it ends well
        self._meter = meter()  # now, in the request: a stream ends after the handler returned

    def __iter__(self) -> Iterator[str]:
        try:
            for item in self._pieces:
                if isinstance(item, Usage):
                    self.usage = item
                else:
                    yield item
            self._status = 200
        except ModelBusy as exc:
            self._status = 503
            raise ApiError(503, exc.detail, {"Retry-After": str(exc.retry_after)}) from None
        finally:
            self.close()

    def text(self) -> str:
        return "".join(self)

    def close(self) -> None:
        """Release the model (also when a client went away mid-stream); idempotent."""
        if self._stack is None:
            return
        self._pieces.close()  # ends the model's generation if the client went away
        self._stack.close()
        self._stack = None
        self.execution_time = time.monotonic() - self._started
        service = self.service
        service._observed("llm", self._status, self._started)
        if self.usage is not None:
            total = self.usage.input_tokens + self.usage.output_tokens
            if service.metrics:
                service.metrics.llm_tokens.labels("input").inc(self.usage.input_tokens)
                service.metrics.llm_tokens.labels("output").inc(self.usage.output_tokens)
            if self._meter is not None:
                self._meter.charge(tokens=total)  # the caller's TPM/TPD
