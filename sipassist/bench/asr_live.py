"""`sipassist bench asr --live`: the call pipeline against the model alone.

N utterances of the test set (rendered by `bench render-set`) are said through one real call
(bench/live.py). For each: what the daemon transcribed in the call (its caller turns), and
what the same Whisper, with the same prompt, makes of the same audio after an offline G.711
mu-law round trip. Word error rate live vs. offline per sentence, and where the live audio
differed: how much of the speech's start and end the utterance held (found by aligning the
captured samples with the line's audio), whether it came in two turns, whether early ASR
was used, and the captured audio transcribed again with Whisper's full 30 s window.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from ..config import Settings
from ..voice.asr import write_wav
from ..voice.confidence import transcript_text
from ..voice.resample import resample
from .answers import load_set, rendered_clips, wer
from .line import through

RATE = 16000
ONSET = 0.02  # a sample this loud starts speech (the set's audio is clean)


@dataclass(frozen=True)
class Row:
    index: int
    category: str
    reference: str
    live: str
    live_wer: float
    offline: str
    offline_wer: float
    words: int
    turns: int  # caller turns in the utterance's window (2+: cut in two)
    early: bool  # the turn used the transcript made during the endpointer's wait
    lead_ms: float | None  # audio kept before the speech's onset (negative: onset clipped)
    tail_ms: float | None  # audio kept after the speech's end (negative: end clipped)
    captured_full: str  # the captured audio through Whisper's 30 s window
    captured_full_wer: float | None
    call_glitches: int | None  # 20 ms speech blocks lost, repeated or garbled by the daemon's side
    phone_glitches: int | None  # the same in what the test phone sent (not ours)


def pick(utterances, count: int) -> list:
    """`count` utterances spread evenly over the set, goodbyes left out (they end the call)."""
    pool = [u for u in utterances if u.category != "goodbye"]
    if count >= len(pool):
        return pool
    step = len(pool) / count
    return [pool[int(i * step)] for i in range(count)]


def align(captured: np.ndarray, line: np.ndarray) -> int | None:
    """Where `captured` starts in `line` (samples, negative: before it), by cross-correlation."""
    if captured.size == 0 or line.size == 0:
        return None
    size = 1 << (captured.size + line.size).bit_length()
    product = np.fft.irfft(np.fft.rfft(line, size) * np.conj(np.fft.rfft(captured, size)), size)
    lag = int(np.argmax(product))
    return lag - size if lag > size // 2 else lag


def glitches(heard: np.ndarray, line: np.ndarray, block: int = 320, reach: int = 1600) -> int:
    """20 ms blocks of speech in `heard` that are not where the line has them: a block lost or
    repeated on the way shifts all that follows (found as a change of the local alignment),
    a garbled one matches nowhere well."""
    start = align(heard, line)
    if start is None:
        return 0
    count, previous = 0, 0
    for at in range(0, heard.size - block, block):
        piece = heard[at:at + block]
        energy = float(np.dot(piece, piece))
        if energy < block * ONSET ** 2:
            continue
        first = start + at - reach
        lo, hi = max(0, first), min(line.size, start + at + block + reach)
        if hi - lo < block:
            count += 1
            continue
        window = line[lo:hi]
        scores = np.correlate(window, piece, "valid")
        norms = np.sqrt(np.convolve(window * window, np.ones(block), "valid") * energy) + 1e-9
        best = int(np.argmax(scores / norms))
        shift = lo + best - (start + at)
        if scores[best] / norms[best] < 0.7 or abs(shift - previous) >= block // 4:
            count += 1
        previous = shift
    return count


def _speech_span(samples: np.ndarray) -> tuple[int, int]:
    loud = np.nonzero(np.abs(samples) > ONSET)[0]
    return (int(loud[0]), int(loud[-1]) + 1) if len(loud) else (0, len(samples))


def _row(utterance, clip: np.ndarray, live, index: int, transcriber,
         keep: Path | None = None) -> Row:
    callers = live.caller_turns(index)
    text = " ".join(turn["text"] for turn in callers)
    line, line_rate = through("ulaw", clip)
    offline = transcript_text(transcriber.transcribe_detailed(line, line_rate))[0]
    heard = live.heard(index)
    used = heard[-1] if heard else None
    lead = tail = None
    full = ""
    full_wer = call_glitches = phone_glitches = None
    reference16 = resample(line, line_rate, RATE)
    sent = live.sent_during(index)
    if sent is not None:
        phone_glitches = glitches(resample(sent[0], sent[1], RATE), reference16)
    if used is not None:
        captured = resample(used.samples, used.rate, RATE)
        reference = reference16
        call_glitches = glitches(captured, reference)
        start = align(captured, reference)
        if start is not None:
            onset, end = _speech_span(reference)
            lead = (onset - start) / RATE * 1000
            tail = (start + captured.size - end) / RATE * 1000
        full = transcriber.transcribe_detailed(captured, RATE, full=True).text
        if keep is not None:  # both sides, to listen to or compare
            keep.mkdir(parents=True, exist_ok=True)
            write_wav(keep / f"{utterance.index:03d}-call.wav", captured, RATE)
            write_wav(keep / f"{utterance.index:03d}-offline.wav", reference, RATE)
        full_wer = round(wer(utterance.say, full), 3)
    early = any("early_asr_ms" in turn.get("timings", {}) for turn in callers)
    return Row(utterance.index, utterance.category, utterance.say, text,
               round(wer(utterance.say, text), 3), offline,
               round(wer(utterance.say, offline), 3), len(utterance.say.split()),
               len(callers), early, None if lead is None else round(lead),
               None if tail is None else round(tail), full, full_wer, call_glitches,
               phone_glitches)


def summarise(rows: list[Row]) -> dict:
    words = sum(row.words for row in rows) or 1

    def weighted(key: str) -> float:
        return round(sum(getattr(row, key) * row.words for row in rows) / words, 3)

    leads = [row.lead_ms for row in rows if row.lead_ms is not None]
    return {
        "sentences": len(rows),
        "wer_live": weighted("live_wer"),
        "wer_offline": weighted("offline_wer"),
        "worse_live": sum(row.live_wer > row.offline_wer for row in rows),
        "better_live": sum(row.live_wer < row.offline_wer for row in rows),
        "not_heard": sum(row.turns == 0 for row in rows),
        "split": sum(row.turns > 1 for row in rows),
        "early_used": sum(row.early for row in rows),
        "onset_clipped": sum(lead < 0 for lead in leads),
        "call_glitches": sum(r.call_glitches or 0 for r in rows),
        "phone_glitches": sum(r.phone_glitches or 0 for r in rows),
        "lead_ms_min": min(leads) if leads else None,
        "tail_ms_min": min((r.tail_ms for r in rows if r.tail_ms is not None), default=None),
    }


def run(settings: Settings, audio_dir: Path, count: int = 20, voice: str = "piper",
        gap: float = 8.0, json_path: Path | None = None, out: TextIO = sys.stdout) -> int:
    from .live import run_call

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    chosen = pick(load_set(), count)
    clips = rendered_clips(audio_dir, voice, chosen, out)
    if clips is None:
        return 1
    daemons = []
    started = time.monotonic()
    print(f"{len(chosen)} utterances ({voice}) through one call, {gap:g} s apart ...", file=out)
    live = run_call(settings, clips, gap, prepare=daemons.append)
    transcriber = daemons[0].transcriber
    keep = None if json_path is None else json_path.with_suffix("")  # <json>/NNN-call.wav
    rows = [_row(u, clip, live, i, transcriber, keep)
            for i, (u, clip) in enumerate(zip(chosen, clips))]
    summary = summarise(rows)
    summary.update(voice=voice, gap_seconds=gap, seconds=round(time.monotonic() - started),
                   pss_call_mb=None if live.pss_call_mb is None else round(live.pss_call_mb))
    print(format_rows(rows), file=out)
    print(f"\nWER live {summary['wer_live']:.3f} vs offline {summary['wer_offline']:.3f} "
          f"over {len(rows)} sentences: {summary['worse_live']} worse live, "
          f"{summary['better_live']} better; not heard {summary['not_heard']}, cut in two "
          f"{summary['split']}, onset clipped {summary['onset_clipped']}, early ASR used "
          f"{summary['early_used']}; 20 ms blocks lost/garbled: {summary['call_glitches']} on the "
          f"daemon's side, {summary['phone_glitches']} in what the phone sent", file=out)
    if json_path is not None:
        json_path.write_text(json.dumps({"summary": summary, "rows": [asdict(r) for r in rows]},
                                        indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}", file=out)
    return 0


def format_rows(rows: list[Row]) -> str:
    fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    lines = [f"{'#':>3} {'live':>5} {'off':>5} {'full':>5} {'lead':>5} {'tail':>5} "
             f"{'turns':>5} {'early':>5} {'glch':>4} {'ph':>3}  live text | offline text"]
    for r in rows:
        full = "-" if r.captured_full_wer is None else f"{r.captured_full_wer:.2f}"
        lines.append(f"{r.index:3} {r.live_wer:5.2f} {r.offline_wer:5.2f} {full:>5} "
                     f"{fmt(r.lead_ms):>5} {fmt(r.tail_ms):>5} {r.turns:5} "
                     f"{'yes' if r.early else '':>5} {fmt(r.call_glitches):>4} "
                     f"{fmt(r.phone_glitches):>3}  {r.live[:45]} | {r.offline[:45]}")
    return "\n".join(lines)
