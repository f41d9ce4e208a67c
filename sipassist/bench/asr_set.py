"""`sipassist bench asr --set`: the phone-line test set through codecs and noise, offline.

Every utterance of answers_set.toml, in every voice (rendered once by `bench render-set`),
goes through each codec (G.711 mu-law and A-law at 8 kHz, G.722 at 16 kHz), clean and with
pink noise at 20 dB SNR, and is transcribed by Whisper without and with the tools' prompt
(voice/bias.py). Reported: word error rate per voice, codec and noise, with and without the
prompt; what the rules and the confidence check make of each transcript (right, re-asked,
wrong) per category; the parser on the set's own text; and, for choosing the confidence
thresholds, how many wrong answers and right ones each log-probability cut would re-ask.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TextIO

from ..config import Settings
from ..models import ModelNotFound, resolve_asr_model, resolve_tts_voice
from ..voice.asr import Transcript
from ..voice.bias import tool_prompt
from .answers import (
    CATEGORIES, OUTCOMES, TOOLS, Utterance, audio_path, comparable_words, intent_is_right, judge, known_voices,
    load_audio, load_set, render, wer,
)
from .line import CODECS, CodecMissing, through, with_noise
from .voices import Speakers

DEFAULT_AUDIO_DIR = Path("bench-results/answers-set-audio")
NOISE_SNR_DB = 20.0
THRESHOLDS = (-1.2, -1.0, -0.9, -0.8, -0.7, -0.6, -0.5, -0.4, -0.3)


@dataclass(frozen=True)
class Row:
    voice: str
    codec: str
    noise: str  # "clean" or "20dB"
    bias: bool
    index: int
    category: str
    reference: str
    text: str
    wer: float
    words: int
    outcome: str  # right, reask, wrong
    understood: bool  # the rules did the right thing with the text, confidence aside
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    tokens: int
    note: str
    latency_ms: float


def render_set(settings: Settings, audio_dir: Path, voices: str | None,
               out: TextIO = sys.stdout) -> int:
    """`sipassist bench render-set`: speak the set in every voice, once."""
    from ..voice.tts import Synthesizer

    chosen = known_voices(voices)
    utterances = load_set()
    missing = [voice for voice in chosen
               if any(not audio_path(audio_dir, voice, u).exists() for u in utterances)]
    if not missing:
        return 0
    synthesizer = None
    if any(name.startswith("piper") for name in missing):
        synthesizer = Synthesizer(resolve_tts_voice(settings.models, settings.paths.models),
                                  16000, cache_size=0)
    print(f"{len(utterances)} utterances, voices {', '.join(missing)} -> {audio_dir}", file=out)
    render(audio_dir, Speakers(synthesizer), missing, utterances, out)
    return 0


def conditions(codecs: list[str], noisy: list[str]) -> list[tuple[str, str]]:
    return [(codec, "clean") for codec in codecs] + \
           [(codec, f"{NOISE_SNR_DB:g}dB") for codec in noisy]


def run(settings: Settings, *, audio_dir: Path = DEFAULT_AUDIO_DIR, voices: str | None = None,
        codecs: str | None = None, noisy: str | None = "ulaw", every: int = 1,
        bias_modes: tuple[bool, ...] = (False, True), json_path: Path | None = None,
        out: TextIO = sys.stdout) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    from ..voice.asr import Transcriber

    chosen = known_voices(voices)
    codec_list = [c.strip() for c in (codecs or ",".join(CODECS)).split(",") if c.strip()]
    noisy_list = [c.strip() for c in (noisy or "").split(",") if c.strip()]
    utterances = load_set()[:: max(1, every)]
    render_set(settings, audio_dir, ",".join(chosen), out)
    try:
        model = resolve_asr_model(settings.models, settings.paths.models)
    except ModelNotFound as exc:
        print(f"no Whisper model: {exc}", file=out)
        return 1
    transcriber = Transcriber(model)
    prompt = tool_prompt()
    started = time.perf_counter()
    rows: list[Row] = []
    skipped: set[str] = set()
    for bias in bias_modes:
        transcriber.prompt = prompt if bias else ""
        for voice in chosen:
            for codec, noise in conditions(codec_list, noisy_list):
                for utterance in utterances:
                    speech = load_audio(audio_dir, voice, utterance)
                    if noise != "clean":
                        speech = with_noise(speech, NOISE_SNR_DB, seed=utterance.index)
                    try:
                        line, rate = through(codec, speech)
                    except CodecMissing as exc:
                        skipped.add(f"{codec}: {exc}")
                        break
                    rows.append(_row(transcriber, utterance, voice, codec, noise, bias, line,
                                     rate))
            print(f"bias {'on' if bias else 'off'}, {voice}: done"
                  f" ({time.perf_counter() - started:.0f} s)", file=out, flush=True)
    for line in sorted(skipped):
        print(f"skipped {line}", file=out)
    report = summarise(rows, utterances)
    print(format_report(report, prompt), file=out)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"model": model.name, "prompt": prompt,
                                         "summary": report,
                                         "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
        print(f"wrote {json_path}", file=out)
    return 0


def rejudge(json_path: Path, out: TextIO = sys.stdout) -> int:
    """`bench asr --set --rejudge PATH`: the report of an earlier run's transcripts, judged
    again by today's rules and thresholds (no ASR), e.g. after changing voice/confidence.py."""
    data = json.loads(Path(json_path).read_text(encoding="utf-8"))
    utterances = {u.index: u for u in load_set()}
    rows = []
    for item in data["rows"]:
        row = Row(**item)
        utterance = utterances[row.index]
        transcript = Transcript(row.text, 0.0, 5, "short", 0.0, row.tokens, row.note,
                                row.avg_logprob, row.no_speech_prob, row.compression_ratio)
        rows.append(replace(row, outcome=judge(utterance, row.text, transcript),
                            understood=intent_is_right(utterance, row.text)))
    judged = sorted({row.index for row in rows})
    print(format_report(summarise(rows, [utterances[i] for i in judged]), data["prompt"]),
          file=out)
    return 0


def _row(transcriber, utterance: Utterance, voice: str, codec: str, noise: str, bias: bool,
         line, rate: int) -> Row:
    begun = time.perf_counter()
    result = transcriber.transcribe_detailed(line, rate)
    latency = (time.perf_counter() - begun) * 1000
    text = result.text.strip()
    return Row(voice, codec, noise, bias, utterance.index, utterance.category, utterance.say,
               text, round(wer(utterance.say, text), 3), len(comparable_words(utterance.say)),
               judge(utterance, text, result), intent_is_right(utterance, text),
               result.avg_logprob, result.no_speech_prob, result.compression_ratio,
               result.tokens, result.note, round(latency, 1))


# --- the report ---------------------------------------------------------------------------

def _corpus_wer(rows: list[Row]) -> float:
    words = sum(r.words for r in rows)
    return round(sum(r.wer * r.words for r in rows) / words, 4) if words else 0.0


def summarise(rows: list[Row], utterances: list[Utterance]) -> dict:
    by_condition: dict[tuple, list[Row]] = defaultdict(list)
    by_category: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        by_condition[(row.voice, row.codec, row.noise, row.bias)].append(row)
        family = row.voice.split("-")[0]  # piper (and its sox shifts) or espeak
        tools = "tools" if row.category in TOOLS else "other"
        for category in (row.category, tools):
            by_category[(family, category, row.bias)].append(row)
    wer_table = [{"voice": v, "codec": c, "noise": n, "bias": b, "wer": _corpus_wer(group),
                  "right": sum(r.outcome == "right" for r in group), "n": len(group)}
                 for (v, c, n, b), group in by_condition.items()]
    outcomes = []
    order = CATEGORIES + ("tools", "other")
    for (family, category, bias), group in sorted(by_category.items(), key=lambda kv: (
            kv[0][0] != "piper", order.index(kv[0][1]), kv[0][2])):
        counts = {o: sum(r.outcome == o for r in group) for o in OUTCOMES}
        outcomes.append({"voices": family, "category": category, "bias": bias,
                         "n": len(group), **counts,
                         "accuracy": round(counts["right"] / len(group), 4)})
    overall = {bias: _corpus_wer([r for r in rows if r.bias == bias])
               for bias in sorted({r.bias for r in rows})}
    latency = {bias: statistics.median(r.latency_ms for r in rows if r.bias == bias)
               for bias in sorted({r.bias for r in rows})}
    parser = [u for u in utterances if not intent_is_right(u, u.say)]
    return {
        "wer_overall": {("on" if b else "off"): w for b, w in overall.items()},
        "latency_ms_median": {("on" if b else "off"): round(v, 1) for b, v in latency.items()},
        "wer": wer_table,
        "outcomes": outcomes,
        "parser_on_text": {"n": len(utterances), "right": len(utterances) - len(parser),
                           "wrong": [u.say for u in parser]},
        "thresholds": _sweep(rows),
    }


def _sweep(rows: list[Row]) -> list[dict]:
    """Per log-probability cut: wrong answers it would re-ask, right ones it would lose."""
    sweep = []
    for threshold in THRESHOLDS:
        for path in ("tool", "model"):
            group = [r for r in rows if (r.category == "general") == (path == "model")]
            cut = [r for r in group if r.avg_logprob < threshold]
            sweep.append({"threshold": threshold, "path": path,
                          "wrong_caught": sum(not r.understood for r in cut),
                          "wrong_total": sum(not r.understood for r in group),
                          "right_lost": sum(r.understood for r in cut),
                          "right_total": sum(r.understood for r in group)})
    return sweep


def format_report(report: dict, prompt: str) -> str:
    lines = [f"\nprompt (bias on): {prompt}\n",
             "WER (normalised: contractions, numbers as digits) by voice, codec, noise"]
    table: dict[tuple, dict] = defaultdict(dict)
    for item in report["wer"]:
        table[(item["voice"], item["codec"], item["noise"])][item["bias"]] = item
    header = f"{'voice':12} {'codec':5} {'noise':6} {'WER off':>8} {'WER on':>7}" \
             f" {'right off':>10} {'right on':>9}"
    lines += [header, "-" * len(header)]
    for (voice, codec, noise), by_bias in table.items():
        off, on = by_bias.get(False), by_bias.get(True)

        def cell(item, key, width):
            if item is None:
                return " " * width
            if key == "wer":
                return f"{item['wer']:{width}.3f}"
            return f"{item['right']:>{width - 4}}/{item['n']:<3}"
        lines.append(f"{voice:12} {codec:5} {noise:6} {cell(off, 'wer', 8)} {cell(on, 'wer', 7)}"
                     f" {cell(off, 'right', 10)} {cell(on, 'right', 9)}")
    lines.append(f"overall WER: {report['wer_overall']}; median ASR ms:"
                 f" {report['latency_ms_median']}")
    lines += ["", "What the assistant would do (rules + confidence check on the transcript)",
              "(model: a tool question no rule understood; wrong: a wrong tool or value, or a"
              " garbled question for the LLM)",
              f"{'voices':7} {'category':9} {'bias':4} {'n':>5} {'right':>6} {'reask':>6}"
              f" {'model':>6} {'wrong':>6} {'accuracy':>8}"]
    for item in report["outcomes"]:
        lines.append(f"{item['voices']:7} {item['category']:9} {'on' if item['bias'] else 'off':4}"
                     f" {item['n']:5} {item['right']:6} {item['reask']:6} {item['model']:6}"
                     f" {item['wrong']:6} {item['accuracy']:8.1%}")
    parser = report["parser_on_text"]
    lines += ["", f"parser on the set's own text: {parser['right']}/{parser['n']} right"]
    lines += [f"  wrong: {say}" for say in parser["wrong"]]
    lines += ["", "log-probability cut: wrong caught / all wrong, right lost / all right",
              f"{'cut':>5} {'tool path':>22} {'model path':>22}"]
    by_cut: dict[float, dict] = defaultdict(dict)
    for item in report["thresholds"]:
        by_cut[item["threshold"]][item["path"]] = item

    def pair(item):
        return (f"{item['wrong_caught']}/{item['wrong_total']}, "
                f"{item['right_lost']}/{item['right_total']}")
    for cut, paths in by_cut.items():
        lines.append(f"{cut:5.1f} {pair(paths['tool']):>22} {pair(paths['model']):>22}")
    return "\n".join(lines)
