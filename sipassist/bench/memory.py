"""`sipassist bench memory`: the daemon's proportional set size (PSS), idle and in a call,
and what it is made of.

PSS counts a page shared by n mappings as 1/n, so the model weights, which the chat model and
the tool router map from one file, count once (RSS would count them twice). The breakdown
groups /proc/self/smaps by what is mapped: each model file, shared libraries, and anonymous
memory (the Python heap, llama.cpp's KV caches and compute buffers, onnxruntime's arena).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import TextIO

from ..config import Settings


def pss_mb(pid: str = "self") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _kind(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".gguf"):
        return f"llm weights ({name})"
    if name == "model.bin" or "whisper" in path:
        return "whisper weights"
    if name.endswith(".onnx"):
        return f"onnx ({name})"
    if ".so" in name:
        if "llama" in name or "ggml" in name:
            return "libs: llama.cpp"
        if "ctranslate2" in path or "ctranslate2" in name:
            return "libs: ctranslate2"
        if "onnxruntime" in path:
            return "libs: onnxruntime"
        return "libs: other"
    if not path or path.startswith("["):
        return "anonymous (heap, KV caches, buffers)"
    return "other files"


def pss_breakdown(pid: str = "self") -> dict[str, float]:
    """MB of PSS per kind of mapping, largest first."""
    totals: dict[str, float] = defaultdict(float)
    kind = "anonymous (heap, KV caches, buffers)"
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        head = line.split(None, 5)
        if len(head) >= 5 and "-" in head[0] and ":" in head[3]:  # a mapping's header line
            kind = _kind(head[5].strip() if len(head) == 6 else "")
        elif line.startswith("Pss:"):
            totals[kind] += int(line.split()[1]) / 1024
    return {k: round(v, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def alone_mb(pid: str = "self") -> float | None:
    """What PSS would be with no other process mapping the same files (a box running only
    the daemon): anonymous memory plus each mapped file's resident pages once. On this
    shared machine other processes map the same model files and lower the real PSS."""
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return None
    # Keyed by file and offset: two mappings of the same model file share their pages.
    files: dict[tuple[str, str], float] = {}
    anonymous = 0.0
    path, offset = "", ""
    for line in lines:
        head = line.split(None, 5)
        if len(head) >= 5 and "-" in head[0] and ":" in head[3]:
            path, offset = (head[5].strip() if len(head) == 6 else ""), head[2]
        elif line.startswith("Rss:"):
            rss = int(line.split()[1]) / 1024
            if not path or path.startswith("["):
                anonymous += rss
            else:
                files[path, offset] = max(files.get((path, offset), 0.0), rss)
    return round(anonymous + sum(files.values()), 1)


def run(settings: Settings, json_path: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Start the daemon with every model, measure PSS idle, then during a call of three
    questions (a sum, a weather question, one for the language model)."""
    from .answers import load_set, load_audio
    from .asr_set import DEFAULT_AUDIO_DIR
    from .live import run_call

    utterances = load_set()
    chosen = [next(u for u in utterances if u.category == c)
              for c in ("calc", "weather", "general")]
    try:
        clips = [load_audio(DEFAULT_AUDIO_DIR, "piper", u) for u in chosen]
    except OSError:
        print(f"render the set first: sipassist bench render-set --voices piper "
              f"(expected in {DEFAULT_AUDIO_DIR})", file=out)
        return 1
    idle: dict[str, float] = {}

    def measure_idle(daemon) -> None:  # every model loaded, no call yet
        idle.update(pss_breakdown())

    live = run_call(settings, clips, gap=9.0, prepare=measure_idle)
    in_call = live.pss_call_breakdown
    result = {
        "pss_idle_mb": round(live.pss_idle_mb or 0),
        "pss_call_peak_mb": round(live.pss_call_mb or 0),
        "alone_call_peak_mb": live.alone_call_mb,
        "breakdown_loaded_mb": idle,
        "breakdown_call_peak_mb": in_call,
        "llm": settings.llm.model, "llm_context": settings.llm.context,
        "asr_model": settings.models.asr_model,
        "turns": [turn for _at, turn in live.turns],
    }
    print(f"PSS idle {result['pss_idle_mb']} MB, in a call (peak) "
          f"{result['pss_call_peak_mb']} MB (target <= 1200 MB); alone on a box "
          f"{result['alone_call_peak_mb']} MB (each mapped file counted in full)", file=out)
    print(f"\n{'in the call (peak), by mapping':44} {'MB':>8}", file=out)
    for kind, mb in in_call.items():
        print(f"{kind:44} {mb:8.1f}", file=out)
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}", file=out)
    return 0
