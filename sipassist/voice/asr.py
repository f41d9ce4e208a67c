"""Speech to text with a local CTranslate2 Whisper model (faster-whisper), plus WER scoring.

Whisper always looks at a 30 s window: `WhisperModel.transcribe` pads every input to 3000 mel
frames, so a 1 s "yes" costs as much encoder time as 30 s of speech. The CTranslate2 model itself
accepts a shorter mel, so a short utterance is padded with silence (the *waveform*, before the mel
is computed: a zero-padded mel, or none, makes the decoder loop) to a 5 s or 10 s window and
decoded directly. Measured with `sipassist bench asr` on 2 cores (phone-quality Piper speech,
0.6-7 s): whisper base 85-300 ms instead of 430-750 ms, tiny.en 50-165 ms instead of 230-370 ms,
at the same word error rate. Windows shorter than ~5 s loop badly, so 5 s is the smallest.

Alone in a 5 s window the decoder often says a short sentence twice ("Yes. Yes."). Two guards: a
cap on new tokens that scales with the audio's length, and a cut of repeated sentences or phrases.
If the cap is hit without a visible repetition, the utterance is decoded again the normal way.
Utterances of 9.5-28 s use a direct 30 s window (as fast and as accurate as faster-whisper's own
path, ~5-10% faster), and anything longer `WhisperModel.transcribe`, which slides over any length.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import threading
import time
import wave
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer

from ..models import ModelNotFound, ResolvedModel
from .resample import resample, to_float32, to_pcm16

log = logging.getLogger(__name__)

WHISPER_RATE = 16000
WINDOWS = (5, 10, 30)  # seconds of mel fed to the model on the direct path
WINDOW_MARGIN = 0.5  # seconds of silence an utterance keeps inside its window, at least
FULL_PATH_SECONDS = 28.0  # longer utterances go to WhisperModel.transcribe, which slides windows
# New-token cap of the direct path: Piper and fast human speech run at 4-5 tokens a second.
TOKENS_BASE = 8
TOKENS_PER_SECOND = 6.0
# faster-whisper's own no-speech rule: skip when both hold.
NO_SPEECH_PROB = 0.6
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_SURE = 0.8  # above this, skip whatever the log probability (silence -> "you")
SILENCE_PEAK = 1e-3  # -60 dBFS
MAX_DECODER_LENGTH = 448  # Whisper's text context
MAX_PROMPT_TOKENS = MAX_DECODER_LENGTH // 2 - 1


@dataclass(frozen=True)
class Transcript:
    """One transcription and how it was made."""

    text: str
    audio_seconds: float
    window_seconds: int  # mel window fed to the model: 5, 10 or 30
    # "short" (CTranslate2 generate on a 5/10/30 s window), "full" (WhisperModel.transcribe) or
    # "none" (silent input: the model did not run)
    path: str
    elapsed_seconds: float
    tokens: int = 0  # tokens decoded on the short path (0 on the full path)
    # "", "silence", "no-speech", "repeat-cut" or "token-cap" (then retried on the full path)
    note: str = ""
    # How sure the model was (voice/confidence.py judges them): the mean log probability of
    # the text's tokens, the probability that there was no speech at all, and how well the
    # text compresses (a decoder loop compresses well). 0.0 where the model did not run.
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0


@dataclass(frozen=True)
class _Decoded:
    text: str
    note: str = ""
    tokens: int = 0
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


def choose_window(audio_seconds: float) -> int | None:
    """The smallest window holding the utterance plus a margin; None for the full path."""
    if audio_seconds > FULL_PATH_SECONDS:
        return None
    for window in WINDOWS:
        if audio_seconds + WINDOW_MARGIN <= window:
            return window
    return WINDOWS[-1]


def token_budget(audio_seconds: float) -> int:
    """At most this many new tokens for an utterance this long (the loop guard)."""
    return int(TOKENS_BASE + TOKENS_PER_SECOND * audio_seconds)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def cut_repetition(text: str, truncated: bool = False) -> str:
    """Drop a decoder loop: a sentence said twice in a row, or a phrase three times in a row.

    "Yes. Yes." -> "Yes."; "Q? Q? Q?" -> "Q?"; "call me call me call me" -> "call me". With
    truncated=True (the token cap stopped the decoder, as a loop does) any sentence said again,
    or a last one restarting an earlier sentence, starts the loop: "A. B. A. B" -> "A. B.".
    """
    sentences = [part for part in _SENTENCE_END.split(text.strip()) if part]
    kept: list[str] = []
    seen: list[list[str]] = []
    for index, sentence in enumerate(sentences):
        words = normalise_words(sentence)
        if words and seen and words == seen[-1]:
            break  # the decoder went round again: nothing from here on is new
        if truncated and words:
            last = index == len(sentences) - 1
            if words in seen or (last and any(old[: len(words)] == words for old in seen)):
                break
        kept.append(sentence)
        seen.append(words)
    words = " ".join(kept).split()
    keys = [" ".join(normalise_words(word)) for word in words]
    for start in range(len(words)):
        for period in range(1, (len(words) - start) // 3 + 1):
            one = keys[start : start + period]
            if (
                any(one)
                and keys[start + period : start + 2 * period] == one
                and keys[start + 2 * period : start + 3 * period] == one
            ):
                return " ".join(words[: start + period])
    return " ".join(words)


def is_silent(audio: np.ndarray) -> bool:
    """Digital silence or nearly (peak below -60 dBFS): Whisper would only invent words."""
    return audio.size == 0 or float(np.max(np.abs(audio))) < SILENCE_PEAK


class Transcriber:
    """English transcription of short utterances on the CPU; one model shared by all callers."""

    def __init__(self, model: ResolvedModel, cpu_threads: int = 2, prompt: str = ""):
        self.model_info = model
        started = time.perf_counter()
        if not (Path(model.path) / "tokenizer.json").is_file():
            # faster-whisper would fetch a missing tokenizer from the Hugging Face hub.
            raise ModelNotFound(f"Whisper model {model.path} has no tokenizer.json beside model.bin")
        # A directory path never touches the hub; local_files_only makes that explicit.
        self._model = WhisperModel(
            str(model.path),
            device="cpu",
            compute_type="int8",
            cpu_threads=cpu_threads,
            local_files_only=True,
        )
        # Neither the CTranslate2 model nor faster-whisper's generator promise re-entrancy.
        self._lock = threading.Lock()
        multilingual = self._model.model.is_multilingual
        tokenizer = Tokenizer(
            self._model.hf_tokenizer, multilingual, task="transcribe", language="en"
        )
        self._tokenizer = tokenizer
        # As faster-whisper builds it: <|startoftranscript|>[<|en|><|transcribe|>]<|notimestamps|>
        self._prompt: list[int] = []
        self.prompt = prompt
        self._suppress = _suppressed_tokens(tokenizer)
        extractor = self._model.feature_extractor
        self._rate = extractor.sampling_rate
        self._hop = extractor.hop_length
        # What the most recent call (from any thread) did, and how often each path ran.
        self.last_window_seconds: int | None = None
        self.last_path: str | None = None
        self.short_calls = 0
        self.full_calls = 0
        log.info(
            "loaded Whisper %s from %s in %.2f s",
            model.name, model.source, time.perf_counter() - started,
        )

    # --- public API -------------------------------------------------------------------------

    @property
    def prompt(self) -> str:
        """Text the decoder sees as if said just before (Whisper's initial prompt): the words
        the tools care about, so "humid" is not heard as "human" (voice/bias.py)."""
        return self._prompt_text

    @prompt.setter
    def prompt(self, text: str) -> None:
        tokenizer = self._tokenizer
        self._prompt_text = text.strip()
        previous: list[int] = []
        if self._prompt_text:
            # As faster-whisper does it: <|startofprev|> and at most 223 tokens of text.
            previous = [tokenizer.sot_prev,
                        *tokenizer.encode(" " + self._prompt_text)[-(MAX_PROMPT_TOKENS):]]
        self._prompt = [*previous, *tokenizer.sot_sequence, tokenizer.no_timestamps]
        self._prompt_length = len(previous)

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> str:
        """Text of mono audio at any rate (float in [-1, 1] or int16)."""
        return self.transcribe_detailed(samples, sample_rate).text

    def transcribe_file(self, path: Path) -> str:
        samples, rate = read_wav(path)
        return self.transcribe(samples, rate)

    def transcribe_detailed(
        self, samples: np.ndarray, sample_rate: int, *, full: bool = False
    ) -> Transcript:
        """Text plus the window and path used; full=True forces WhisperModel.transcribe."""
        audio = resample(to_float32(np.asarray(samples)), sample_rate, WHISPER_RATE)
        seconds = audio.size / WHISPER_RATE
        started = time.perf_counter()
        window = None if full else choose_window(seconds)
        if is_silent(audio):
            decoded, path, window = _Decoded("", "silence"), "none", window or 30
        elif window is None:
            decoded, path, window = self._full(audio), "full", 30
        else:
            decoded, path = self._short(audio, window), "short"
            if decoded.note == "token-cap":  # no end of text within the cap and no loop to cut
                log.info("short window hit the %d-token cap; decoding again in full",
                         decoded.tokens)
                decoded, path, window = self._full(audio), "full", 30
        self.last_window_seconds, self.last_path = window, path
        elapsed = time.perf_counter() - started
        text = decoded.text
        log.debug(
            "transcribed %.2f s (%s path, %d s window%s) in %.3f s: %r (logprob %.2f)",
            seconds, path, window, f", {decoded.note}" if decoded.note else "", elapsed, text,
            decoded.avg_logprob,
        )
        return Transcript(text, seconds, window, path, elapsed, decoded.tokens, decoded.note,
                          round(decoded.avg_logprob, 4), round(decoded.no_speech_prob, 4),
                          round(compression_ratio(text), 4))

    def segments(self, samples: np.ndarray, sample_rate: int, prompt: str | None = None
                 ) -> Iterator[tuple[float, float, str]]:
        """(start, end, text) of each segment of any length of audio, lazily, through
        WhisperModel.transcribe; the model is locked per segment, not for the whole audio."""
        audio = resample(to_float32(np.asarray(samples)), sample_rate, WHISPER_RATE)
        if is_silent(audio):
            return
        with self._lock:
            self.full_calls += 1
            found, _info = self._model.transcribe(
                audio, language="en", beam_size=1, vad_filter=False, initial_prompt=prompt or None
            )
        while True:
            with self._lock:
                segment = next(found, None)
            if segment is None:
                return
            if segment.text.strip():
                yield segment.start, segment.end, segment.text.strip()

    # --- the two paths ------------------------------------------------------------------------

    def _short(self, audio: np.ndarray, window: int) -> _Decoded:
        """One greedy decode of a `window`-second mel."""
        samples = window * self._rate
        padded = np.zeros(samples, np.float32)
        padded[: min(audio.size, samples)] = audio[:samples]
        mel = self._model.feature_extractor(padded)[:, : samples // self._hop]
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))
        budget = token_budget(audio.size / self._rate)
        # CTranslate2 4.x stops Whisper after max_length // 2 new tokens (measured; Whisper's own
        # sample_len is n_text_ctx // 2); if a release counts max_length in full instead, the
        # slice below still keeps the cap.
        # The prompt's tokens count towards max_length (measured: a 133-token prompt left
        # nothing for the text under the old cap).
        max_length = min(MAX_DECODER_LENGTH, self._prompt_length + 2 * budget)
        with self._lock:
            self.short_calls += 1
            result = self._model.model.generate(
                features,
                [self._prompt],
                beam_size=1,
                max_length=max_length,
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=self._suppress,
            )[0]
        tokens = result.sequences_ids[0][:budget]
        capped = len(tokens) >= budget
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        sure = {"tokens": len(tokens), "avg_logprob": avg_logprob,
                "no_speech_prob": result.no_speech_prob}
        if result.no_speech_prob > NO_SPEECH_SURE or (
            result.no_speech_prob > NO_SPEECH_PROB and avg_logprob < LOG_PROB_THRESHOLD
        ):
            return _Decoded("", "no-speech", **sure)
        raw = self._tokenizer.decode(tokens).strip()
        text = cut_repetition(raw, truncated=capped)
        if text != raw:
            return _Decoded(text, "repeat-cut", **sure)
        return _Decoded(text, "token-cap" if capped else "", **sure)

    def _full(self, audio: np.ndarray) -> _Decoded:
        with self._lock:
            self.full_calls += 1
            segments, _info = self._model.transcribe(
                audio, language="en", beam_size=1, vad_filter=False,
                initial_prompt=self._prompt_text or None,
            )
            segments = list(segments)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        if not segments:
            return _Decoded(text)
        weights = [max(1, len(segment.tokens)) for segment in segments]
        total = sum(weights)
        return _Decoded(
            text,
            avg_logprob=sum(w * s.avg_logprob for w, s in zip(weights, segments)) / total,
            no_speech_prob=max(segment.no_speech_prob for segment in segments),
        )


def compression_ratio(text: str) -> float:
    """Bytes of the text over bytes zlib makes of it, as Whisper computes it (> 2.4: a loop)."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def _suppressed_tokens(tokenizer: Tokenizer) -> list[int]:
    """faster-whisper's suppress_tokens=[-1]: non-speech symbols and the special task tokens."""
    try:
        from faster_whisper.transcribe import get_suppressed_tokens
    except ImportError:  # a faster-whisper that moved it: build the same set here
        specials = (
            tokenizer.transcribe, tokenizer.translate, tokenizer.sot,
            tokenizer.sot_prev, tokenizer.sot_lm, tokenizer.no_speech,
        )
        return sorted({*tokenizer.non_speech_tokens, *(t for t in specials if t is not None)})
    return list(get_suppressed_tokens(tokenizer, [-1]))


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


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """16-bit mono PCM WAV."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(to_pcm16(samples))


_NON_WORD = re.compile(r"[^a-z0-9']+")


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation: "Don't-stop, OK?" -> ["dont", "stop", "ok"]."""
    return [word.replace("'", "") for word in _NON_WORD.split(text.lower()) if word.strip("'")]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, ignoring case and punctuation."""
    return words_error_rate(normalise_words(reference), normalise_words(hypothesis))


def words_error_rate(ref: list[str], hyp: list[str]) -> float:
    """Word error rate of already normalised word lists."""
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
