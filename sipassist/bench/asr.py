"""`sipassist bench asr`: latency and accuracy of the installed Whisper models, short vs full window.

Fixed sentences (bench/sentences.py) are spoken by the Piper voice at bench time and passed through
an 8 kHz G.711 mu-law round trip, as a caller would be heard. Each Whisper model found offline
(base always, tiny.en if installed, plus the configured model if it is another one) transcribes
each sentence two ways:

- short: what `Transcriber.transcribe` does: a 5, 10 or 30 s window decoded directly (the
  `window` column; a `token-cap` note means it fell back to the full path);
- full: `WhisperModel.transcribe`, which pads every input to a 30 s window.

Latency is the median wall time of --repeat runs (resampling included), after one warm-up call
per model and path. Nothing is downloaded: models resolve from the models directory and packages.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from ..config import ModelSettings, Settings
from ..models import ModelNotFound, ResolvedModel, resolve_asr_model, resolve_tts_voice
from ..voice.asr import Transcriber, normalise_words, word_error_rate
from .sentences import PHONE_RATE, SENTENCES, phone_line


MODES = ("short", "full")
TEXT_WIDTH = 48


@dataclass(frozen=True)
class Row:
    model: str
    mode: str  # "short" (Transcriber's window choice) or "full" (WhisperModel.transcribe)
    window: int  # seconds of mel the model saw
    path: str  # what ran: "short", or "full" (also when a short call fell back)
    audio_seconds: float
    latency_ms: float  # median of the repeats
    rtf: float  # latency / audio duration
    wer: float
    words: int  # reference words, to weight the overall WER
    note: str
    text: str
    reference: str


def asr_models(settings: Settings) -> tuple[list[ResolvedModel], list[str]]:
    """Whisper models resolvable offline (base, tiny.en, the configured one) and what is missing."""
    wanted = ["base", "tiny.en"]
    configured = settings.models.asr_model.strip() or "base"
    if configured not in wanted:
        wanted.append(configured)
    found: list[ResolvedModel] = []
    missing: list[str] = []
    for name in wanted:
        try:
            model = resolve_asr_model(ModelSettings(asr_model=name), settings.paths.models)
        except ModelNotFound as exc:
            missing.append(f"{name}: {exc}")
            continue
        if all(model.path.resolve() != other.path.resolve() for other in found):
            found.append(model)
    return found, missing


def _speak(settings: Settings, out: TextIO) -> list[tuple[str, np.ndarray]]:
    from ..voice.tts import Synthesizer

    synthesizer = Synthesizer(resolve_tts_voice(settings.models, settings.paths.models), 16000)
    started = time.perf_counter()
    lines = [(text, phone_line(synthesizer.synthesize(text), 16000)) for text in SENTENCES]
    total = sum(line.size for _text, line in lines) / PHONE_RATE
    print(
        f"{len(lines)} sentences, {total:.1f} s of speech by Piper {synthesizer.voice.name},"
        f" 8 kHz mu-law round trip (synthesised in {time.perf_counter() - started:.1f} s)",
        file=out,
    )
    return lines


def _measure(
    transcriber: Transcriber, text: str, line: np.ndarray, mode: str, repeat: int
) -> Row:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = transcriber.transcribe_detailed(line, PHONE_RATE, full=mode == "full")
        times.append(time.perf_counter() - started)
    latency = statistics.median(times)
    seconds = line.size / PHONE_RATE
    return Row(
        model=transcriber.model_info.name,
        mode=mode,
        window=result.window_seconds,
        path=result.path,
        audio_seconds=round(seconds, 2),
        latency_ms=round(1000 * latency, 1),
        rtf=round(latency / seconds, 3),
        wer=round(word_error_rate(text, result.text), 3),
        words=len(normalise_words(text)),
        note=result.note,
        text=result.text,
        reference=text,
    )


def summarise(rows: list[Row]) -> list[dict]:
    """Per model and mode: corpus WER, total and median latency, speedup of short over full."""
    summary = []
    for model in dict.fromkeys(row.model for row in rows):
        full_ms = {row.reference: row.latency_ms for row in rows
                   if row.model == model and row.mode == "full"}
        for mode in MODES:
            group = [row for row in rows if row.model == model and row.mode == mode]
            if not group:
                continue
            words = sum(row.words for row in group)
            speedups = [full_ms[row.reference] / row.latency_ms for row in group
                        if row.reference in full_ms and row.latency_ms > 0]
            summary.append({
                "model": model,
                "mode": mode,
                "sentences": len(group),
                "audio_seconds": round(sum(row.audio_seconds for row in group), 2),
                "latency_ms_total": round(sum(row.latency_ms for row in group), 1),
                "latency_ms_median": round(statistics.median(r.latency_ms for r in group), 1),
                "wer": round(sum(row.wer * row.words for row in group) / words, 3),
                "speedup_median": round(statistics.median(speedups), 2) if speedups else None,
                "fallbacks": sum(row.note == "token-cap" for row in group),
            })
    return summary


def format_rows(rows: list[Row]) -> str:
    header = (f"{'model':8} {'mode':5} {'window':>6} {'audio s':>7} {'latency ms':>10}"
              f" {'RTF':>6} {'WER':>5}  text")
    lines = [header, "-" * (len(header) + TEXT_WIDTH - 4)]
    for row in rows:
        text = row.text if len(row.text) <= TEXT_WIDTH else row.text[: TEXT_WIDTH - 3] + "..."
        note = f" [{row.note}]" if row.note else ""
        lines.append(
            f"{row.model:8} {row.mode:5} {row.window:>5}s {row.audio_seconds:7.2f}"
            f" {row.latency_ms:10.1f} {row.rtf:6.3f} {row.wer:5.2f}  {text}{note}"
        )
    return "\n".join(lines)


def format_summary(summary: list[dict]) -> str:
    header = (f"{'model':8} {'mode':5} {'audio s':>7} {'latency ms sum':>14} {'median':>7}"
              f" {'WER':>6} {'speedup (median, full/short)':>29}")
    lines = [header, "-" * len(header)]
    for item in summary:
        speedup = "" if item["mode"] == "full" or item["speedup_median"] is None \
            else f"{item['speedup_median']:.1f}x"
        lines.append(
            f"{item['model']:8} {item['mode']:5} {item['audio_seconds']:7.1f}"
            f" {item['latency_ms_total']:14.0f} {item['latency_ms_median']:7.0f}"
            f" {item['wer']:6.3f} {speedup:>29}"
        )
    return "\n".join(lines)


def run(settings: Settings, repeat: int = 3, json_path: Path | None = None,
        out: TextIO = sys.stdout) -> int:
    """The whole benchmark; returns the exit status."""
    # Belt and braces: every model resolves to a local directory, but never let a hub call out.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one INFO line per call
    repeat = max(1, repeat)
    started = time.perf_counter()
    models, missing = asr_models(settings)
    for line in missing:
        print(f"skipped {line}", file=out)
    if not models:
        print("no Whisper model installed: nothing to benchmark", file=out)
        return 1
    try:
        lines = _speak(settings, out)
    except ModelNotFound as exc:
        print(f"cannot speak the sentences: {exc}", file=out)
        return 1

    rows: list[Row] = []
    for model in models:
        loaded = time.perf_counter()
        transcriber = Transcriber(model)
        print(f"{model.name}: {model.path} ({model.source}), loaded in"
              f" {time.perf_counter() - loaded:.2f} s", file=out)
        for mode in MODES:  # warm-up: first calls allocate buffers
            transcriber.transcribe_detailed(lines[1][1], PHONE_RATE, full=mode == "full")
        for text, line in lines:
            for mode in MODES:
                rows.append(_measure(transcriber, text, line, mode, repeat))
        del transcriber  # one model in memory at a time

    summary = summarise(rows)
    print(file=out)
    print(format_rows(rows), file=out)
    print(file=out)
    print(format_summary(summary), file=out)
    elapsed = time.perf_counter() - started
    print(f"\n{len(rows)} rows, median of {repeat} runs each, in {elapsed:.0f} s", file=out)
    if json_path is not None:
        payload = {
            "repeat": repeat,
            "rows": [asdict(row) for row in rows],
            "summary": summary,
        }
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}", file=out)
    return 0
