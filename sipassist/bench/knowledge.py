"""`sipassist bench knowledge`: the knowledge base's insert rate, query latency and recall.

A temporary table is filled, in requests of 500 rows as a client would send them, with the question
/row pairs of bench/knowledge_pairs.py and generated look-alike rows up to 10,000 rows. At 1,000
and 10,000 rows every question is asked three times: the p50 and p95 of a whole search (embedding
the question + brute-force cosine) and of its embedding alone. Recall@1 and recall@3 (the pair's
row ranked first / in the first three) are measured on the pairs alone and among the 10,000 rows.
Questions no row answers give the best score of an unanswerable question (what min_score must pass).
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from ..config import Settings
from ..knowledge import Embedder, KnowledgeBase, NewRow
from ..models import ModelNotFound, resolve_embedding_model
from .knowledge_pairs import PAIRS

SIZES = (1_000, 10_000)
BATCH = 500
REPEAT = 3
TARGET_P50_MS = 30.0  # at 10k rows
TARGET_RECALL_AT_3 = 0.9
DEFAULT_JSON = Path("bench-results/knowledge.json")
UNANSWERABLE = (
    "What is the capital of Australia?",
    "Can you recommend a good pizza place nearby?",
    "How do I reset my router?",
    "Who won the football match last night?",
    "What's the weather like tomorrow?",
)

_SURNAMES = ("Adams", "Baker", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito",
             "Jensen", "Kowalski", "Lopez", "Murphy", "Nakamura", "Okafor", "Price", "Quinn",
             "Rossi", "Silva", "Turner")
_SPECIALTIES = ("cardiology", "diabetes", "asthma", "sports injury", "sleep", "allergy",
                "nutrition", "physiotherapy", "mental health", "wound care")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_PRODUCTS = ("bandage", "thermometer", "knee brace", "inhaler spacer", "pill organiser",
             "heat pack", "walking stick", "blood glucose strip", "ear plug", "face mask")
_COLOURS = ("blue", "grey", "white", "black", "green", "red")
_TOPICS = ("the staff rota", "the new phone system", "waiting times", "the summer closure",
           "patient feedback", "the fire drill", "the cleaning contract", "the IT upgrade")
_CITIES = ("Springfield", "Riverton", "Lakeside", "Hillcrest", "Brookfield", "Fairview")


def distractors(count: int, seed: int = 7) -> list[str]:
    """`count` distinct rows in the clinic's world that answer none of the questions."""
    rng = random.Random(seed)
    rows: list[str] = []
    for n in range(count):
        kind = n % 4
        if kind == 0:
            rows.append(f"Dr. {rng.choice(_SURNAMES)} holds a {rng.choice(_SPECIALTIES)} clinic on"
                        f" {rng.choice(_DAYS)} {rng.choice(('mornings', 'afternoons'))} in room"
                        f" {100 + n % 400}.")
        elif kind == 1:
            rows.append(f"Stock item {n:05d}: {rng.choice(_COLOURS)} {rng.choice(_PRODUCTS)},"
                        f" {rng.randint(2, 90)} dollars, shelf {rng.randint(1, 40)}.")
        elif kind == 2:
            rows.append(f"Meeting note {n}: the {rng.choice(('nursing', 'reception', 'admin'))}"
                        f" team discussed {rng.choice(_TOPICS)} on {rng.choice(_DAYS)} week"
                        f" {1 + n % 52}.")
        else:
            rows.append(f"The {rng.choice(_CITIES)} branch (site {n}) has {rng.randint(3, 40)}"
                        f" staff and its manager is {rng.choice(_SURNAMES)}.")
    return rows


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _recall(kb: KnowledgeBase, table: str, row_ids: list[str]) -> dict[str, float]:
    """Recall@1 and @3 of the pairs' questions in `table`; row_ids[i] is pair i's row."""
    at1 = at3 = 0
    for (_row, question), row_id in zip(PAIRS, row_ids):
        ranked = [hit.id for hit in kb.search(table, question, limit=3, min_score=-1.0)]
        at1 += ranked[:1] == [row_id]
        at3 += row_id in ranked
    return {"recall_at_1": round(at1 / len(PAIRS), 3), "recall_at_3": round(at3 / len(PAIRS), 3)}


def _latency(kb: KnowledgeBase, table: str) -> dict[str, float]:
    """p50/p95 of whole searches and of the question's embedding alone, in ms."""
    search_ms, embed_ms = [], []
    for _ in range(REPEAT):
        for _row, question in PAIRS:
            started = time.perf_counter()
            kb.embedder.embed([question])
            embed_ms.append(1000 * (time.perf_counter() - started))
            started = time.perf_counter()
            kb.search(table, question, limit=3)
            search_ms.append(1000 * (time.perf_counter() - started))
    return {"query_p50_ms": round(statistics.median(search_ms), 2),
            "query_p95_ms": round(_percentile(search_ms, 0.95), 2),
            "embed_p50_ms": round(statistics.median(embed_ms), 2),
            "queries": len(search_ms)}


def run(settings: Settings, json_path: Path | None = None, out: TextIO = sys.stdout) -> int:
    """The whole benchmark; returns the exit status."""
    threads = settings.knowledge.threads
    embedder = Embedder(lambda: resolve_embedding_model(settings.paths.models), threads)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    try:
        embedder.load()
    except ModelNotFound as exc:
        print(f"no embedding model: {exc}", file=out)
        return 1
    load_s = time.perf_counter() - started
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before
    print(f"{embedder.model.name}: {embedder.model.path} ({embedder.model.source}), loaded in"
          f" {load_s:.2f} s, {threads} thread(s)", file=out)

    results: dict = {"load_average_1m": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
                     "model": embedder.model.name, "threads": threads,
                     "model_load_s": round(load_s, 2), "model_rss_mb": round(rss_model),
                     "pairs": len(PAIRS), "sizes": []}
    limits = replace(settings.knowledge, max_rows=max(SIZES), max_row_chars=10_000)
    with tempfile.TemporaryDirectory(prefix="sipassist-bench-knowledge-") as directory:
        kb = KnowledgeBase(Path(directory), embedder, limits)
        kb.create("pairs")
        pair_ids = [row.id for row in kb.add("pairs", [NewRow(r, {}) for r, _q in PAIRS])]
        results["alone"] = _recall(kb, "pairs", pair_ids)
        results["unanswerable_best_score"] = round(max(
            kb.search("pairs", q, limit=1, min_score=-1.0)[0].score for q in UNANSWERABLE), 3)
        correct = [hit.score for (_r, q), row_id in zip(PAIRS, pair_ids)
                   for hit in kb.search("pairs", q, limit=50, min_score=-1.0) if hit.id == row_id]
        results["answer_score_p50"] = round(statistics.median(correct), 3)

        kb.create("big")
        rows = [NewRow(r, {}) for r, _q in PAIRS] + \
            [NewRow(text, {}) for text in distractors(max(SIZES) - len(PAIRS))]
        inserted, insert_s, big_ids = 0, 0.0, []
        for size in SIZES:
            while inserted < size:
                batch = rows[inserted:min(size, inserted + BATCH)]
                started = time.perf_counter()
                big_ids += [row.id for row in kb.add("big", batch)]
                insert_s += time.perf_counter() - started
                inserted += len(batch)
            row = {"rows": size, "insert_rows_per_s": round(inserted / insert_s, 1),
                   **_latency(kb, "big"), **_recall(kb, "big", big_ids[:len(PAIRS)])}
            results["sizes"].append(row)
            print(f"  {size} rows inserted ({row['insert_rows_per_s']:.0f} rows/s so far)",
                  file=out)

    print(file=out)
    print(format_table(results), file=out)
    if json_path is None:
        json_path = DEFAULT_JSON
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {json_path}", file=out)
    return 0


def format_table(results: dict) -> str:
    header = (f"{'rows':>6} {'insert rows/s':>13} {'query p50 ms':>12} {'p95 ms':>7}"
              f" {'embed p50 ms':>12} {'recall@1':>8} {'recall@3':>8}")
    lines = [header, "-" * len(header)]
    alone = results["alone"]
    lines.append(f"{results['pairs']:>6} {'':>13} {'':>12} {'':>7} {'':>12}"
                 f" {alone['recall_at_1']:8.3f} {alone['recall_at_3']:8.3f}  (the pairs alone)")
    for row in results["sizes"]:
        lines.append(f"{row['rows']:>6} {row['insert_rows_per_s']:13.0f}"
                     f" {row['query_p50_ms']:12.2f} {row['query_p95_ms']:7.2f}"
                     f" {row['embed_p50_ms']:12.2f} {row['recall_at_1']:8.3f}"
                     f" {row['recall_at_3']:8.3f}")
    last = results["sizes"][-1]
    lines.append("")
    lines.append(f"targets: query p50 <= {TARGET_P50_MS:.0f} ms at {last['rows']} rows:"
                 f" {'met' if last['query_p50_ms'] <= TARGET_P50_MS else 'MISSED'};"
                 f" recall@3 >= {TARGET_RECALL_AT_3}:"
                 f" {'met' if alone['recall_at_3'] >= TARGET_RECALL_AT_3 else 'MISSED'}"
                 " (pairs alone)")
    lines.append(f"scores: a right answer p50 {results['answer_score_p50']:.2f}; the best of an"
                 f" unanswerable question {results['unanswerable_best_score']:.2f}")
    lines.append(f"model load {results['model_load_s']:.2f} s, +{results['model_rss_mb']} MB"
                 f" resident; {results['cpus']} CPUs, load average {results['load_average_1m']}"
                 " at the start")
    return "\n".join(lines)
