"""`sipassist bench llm`: the local language models on the test set's general questions.

Each question of answers_set.toml's `general` list that names keywords is asked on its own
(a fresh history, as a caller's first question), through the same LocalChat the calls use
(system prompt, guard, sentence streaming). A reply is right when it holds one of the
keywords. Reported per model: accuracy, the guard's apologies, the time to the first
sentence (what the caller waits for) and to the whole reply, and the process's memory
(PSS) with the model loaded. One model in memory at a time.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import TextIO

from ..config import Settings
from ..models import ModelNotFound, resolve_llm_model
from ..voice.asr import normalise_words
from ..voice.llm import CANNOT_CHECK
from .answers import load_set


def pss_mb() -> float:
    """This process's proportional set size in MB (0 where /proc cannot tell)."""
    from .call import _pss_mb

    return _pss_mb() or 0.0


def questions() -> list[tuple[str, list[str]]]:
    return [(u.say, u.expect["keywords"]) for u in load_set()
            if u.category == "general" and u.expect.get("keywords")]


def measure(settings: Settings, name: str, asked: list[tuple[str, list[str]]],
            out: TextIO) -> dict:
    from ..voice.llm import LocalChat

    model = resolve_llm_model(name, settings.paths.models)
    before = pss_mb()
    loaded = time.perf_counter()
    chat = LocalChat(model.path, settings.llm.threads, settings.llm.context,
                     settings.llm.max_tokens)
    load_seconds = time.perf_counter() - loaded
    rows = []
    for question, keywords in asked:
        started = time.perf_counter()
        first = None
        sentences = []
        for sentence in chat.reply([{"role": "user", "content": question}]):
            if first is None:
                first = time.perf_counter() - started
            sentences.append(sentence)
        total = time.perf_counter() - started
        reply = " ".join(sentences)
        said = normalise_words(reply)
        right = any(keyword in said for keyword in keywords)
        rows.append({"question": question, "reply": reply, "right": right,
                     "apology": CANNOT_CHECK in sentences,
                     "first_sentence_s": round(first or total, 3),
                     "total_s": round(total, 3)})
        print(f"{name:10} {'ok ' if right else 'NO '} {first or total:5.2f} s  {question} -> "
              f"{reply[:90]}", file=out, flush=True)
    peak = pss_mb()
    del chat
    gc.collect()
    firsts = [r["first_sentence_s"] for r in rows]
    return {
        "model": name, "questions": len(rows), "right": sum(r["right"] for r in rows),
        "accuracy": round(sum(r["right"] for r in rows) / len(rows), 3),
        "apologies": sum(r["apology"] for r in rows),
        "first_sentence_s_median": round(statistics.median(firsts), 3),
        "first_sentence_s_p90": round(sorted(firsts)[int(0.9 * (len(firsts) - 1))], 3),
        "total_s_median": round(statistics.median(r["total_s"] for r in rows), 3),
        "load_s": round(load_seconds, 2), "pss_mb_model": round(peak - before),
        "pss_mb_process": round(peak), "rows": rows,
    }


def run(settings: Settings, models: str = "qwen-0.5b", json_path: Path | None = None,
        out: TextIO = sys.stdout) -> int:
    asked = questions()
    results = []
    for name in [m.strip() for m in models.split(",") if m.strip()]:
        try:
            results.append(measure(settings, name, asked, out))
        except ModelNotFound as exc:
            print(f"skipped {name}: {exc}", file=out)
    if not results:
        return 1
    print(f"\n{'model':10} {'right':>7} {'apologies':>9} {'first s p50':>11} {'p90':>5}"
          f" {'whole s p50':>11} {'PSS MB':>7}", file=out)
    for r in results:
        print(f"{r['model']:10} {r['right']:>3}/{r['questions']:<3} {r['apologies']:>9}"
              f" {r['first_sentence_s_median']:11.2f} {r['first_sentence_s_p90']:5.2f}"
              f" {r['total_s_median']:11.2f} {r['pss_mb_model']:7}", file=out)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {json_path}", file=out)
    return 0
