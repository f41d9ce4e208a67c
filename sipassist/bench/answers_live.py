"""`sipassist bench answers`: the test set through real calls, answers checked against the
expected value.

N utterances (spread over the set; the last one a goodbye, which must end the call) are said
through one call (bench/live.py). Each answer is judged by what it says, not by Whisper's
words: the sum's result in the reply, the time or date the DATETIME tool gives for the
expected zone, the WEATHER tool answering, a timer confirmed for the expected duration (and
errand), a general answer holding one of its keywords. "reask" when the daemon asked again,
"missed" when no turn was heard. A wrong answer to a question heard with more word errors
than answers.GARBLED_WER counts as nonsense (a re-ask is the right response to it).
Latency per path (tool: the rules; routed: the model chose a tool; llm; reask) from the end
of the caller's speech to the first reply audio handed to the call (LiveCall.reply_ready;
the phone's recording is reported too, but its timeline drifts on a loaded machine). PSS of the daemon idle and at its peak in the call.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from ..config import Settings
from ..voice.confidence import REASK
from .answers import (GARBLED_WER, TOOLS, Utterance, load_set, rendered_clips,
                      wer)
from .asr_live import pick

TOOL_CATEGORIES = tuple(TOOLS)


@dataclass(frozen=True)
class Row:
    index: int
    category: str
    say: str
    heard: str
    heard_wer: float
    answer: str
    tool: str | None
    path: str  # tool, routed, llm, reask, missed
    outcome: str  # right, reask, wrong, missed
    nonsense: bool  # wrong, to a question heard garbled
    latency_ms: float | None  # speech end -> first reply audio handed to the call
    phone_ms: float | None  # speech end -> reply onset in the phone's recording (drifts)


def _numbers(text: str) -> list[float]:
    from ..voice.numbers import words_to_digits

    found = re.findall(r"-?\d[\d,]*(?:\.\d+)?", words_to_digits(text.lower()))
    return [float(n.replace(",", "")) for n in found if n.replace(",", "").strip("-")]


def _no_digits(text: str) -> str:
    return re.sub(r"[\d:]+", "#", text.lower()).strip(" .")


def answer_is_right(utterance: Utterance, answer: str, tool: str | None) -> bool:
    """Whether `answer` (spoken by `tool`, None: the LLM) answers `utterance` rightly."""
    expect, category = utterance.expect, utterance.category
    if category == "calc":
        return any(abs(n - expect["result"]) < 1e-6 for n in _numbers(answer))
    if category == "datetime":
        if tool != "DATETIME":
            return False
        from ..timezones import system_timezone
        from ..tools.datetime_tool import DateTimeTool

        args = {"format": expect["format"]}
        if expect.get("timezone"):
            args["timezone"] = expect["timezone"]
        now = DateTimeTool(system_timezone()).execute(args).message
        return _no_digits(now) == _no_digits(answer)  # the same zone, AM/PM, weekday, month
    if category == "weather":
        return tool == "WEATHER"
    if category == "timer":
        from ..voice.intents import parse_duration
        from ..voice.asr import normalise_words

        if tool != "SET_TIMER" or parse_duration(answer) != expect["duration"]:
            return False
        errand = expect.get("errand")
        return errand is None or " ".join(normalise_words(errand)) in " ".join(
            normalise_words(answer))
    if category == "general":
        keywords = expect.get("keywords", [])
        lowered = answer.lower()
        return bool(answer) and (not keywords or any(k in lowered for k in keywords))
    return False


def judge(utterance: Utterance, heard: str, replies: list[dict], closed: bool
          ) -> tuple[str, str, str, str | None]:
    """(outcome, path, answer, tool) of one utterance."""
    from ..voice.intents import recognise

    if utterance.category == "goodbye":
        return ("right" if closed else "wrong"), "tool", " ".join(
            r["text"] for r in replies), None
    if not heard:
        return "missed", "missed", "", None
    if not replies:
        return "missed", "missed", "", None
    reply = replies[0]
    answer, tool = reply["text"], reply.get("tool")
    if answer.strip() == REASK:
        return "reask", "reask", answer, None
    path = "llm" if tool is None else ("tool" if recognise(heard) is not None else "routed")
    return ("right" if answer_is_right(utterance, answer, tool) else "wrong"), path, answer, tool


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))])


def summarise(rows: list[Row]) -> dict:
    by_category = {}
    for category in dict.fromkeys(r.category for r in rows):
        group = [r for r in rows if r.category == category]
        by_category[category] = {
            "n": len(group), **{o: sum(r.outcome == o for r in group)
                                for o in ("right", "reask", "wrong", "missed")},
            "accuracy": round(sum(r.outcome == "right" for r in group) / len(group), 3),
        }
    tools = [r for r in rows if r.category in TOOL_CATEGORIES]
    latency = {}
    for path in ("tool", "routed", "llm", "reask", "all"):
        values = [r.latency_ms for r in rows if r.latency_ms is not None
                  and r.category != "goodbye" and (path == "all" or r.path == path)]
        if values:
            latency[path] = {"n": len(values), "p50_ms": _percentile(values, 0.5),
                             "p90_ms": _percentile(values, 0.9)}
    return {
        "utterances": len(rows),
        "tool_accuracy": round(sum(r.outcome == "right" for r in tools) / len(tools), 3)
        if tools else None,
        "tool_right_or_reask": round(sum(r.outcome in ("right", "reask") for r in tools)
                                     / len(tools), 3) if tools else None,
        "nonsense": sum(r.nonsense for r in rows),
        "reasks": sum(r.outcome == "reask" for r in rows),
        "by_category": by_category,
        "latency": latency,
    }


def run(settings: Settings, audio_dir: Path, count: int = 30, voice: str = "piper",
        gap: float = 9.0, json_path: Path | None = None, out: TextIO = sys.stdout) -> int:
    from .live import run_call

    utterances = load_set()
    chosen = pick(utterances, count - 1) + [next(u for u in utterances
                                                 if u.category == "goodbye")]
    clips = rendered_clips(audio_dir, voice, chosen, out)
    if clips is None:
        return 1
    started = time.monotonic()
    print(f"{len(chosen)} utterances ({voice}) through one call, {gap:g} s apart ...", file=out)
    live = run_call(settings, clips, gap, farewell=False, prepare=_no_callbacks)
    rows = []
    for index, utterance in enumerate(chosen):
        heard = " ".join(t["text"] for t in live.caller_turns(index))
        outcome, path, answer, tool = judge(utterance, heard, live.replies(index), live.closed)
        heard_wer = round(wer(utterance.say, heard), 3)
        latency = live.reply_ready(index)
        phone = live.onset_after(index, gap)
        rows.append(Row(utterance.index, utterance.category, utterance.say, heard, heard_wer,
                        answer, tool, path, outcome,
                        outcome == "wrong" and heard_wer > GARBLED_WER,
                        None if latency is None else round(latency * 1000),
                        None if phone is None else round(phone * 1000)))
    summary = summarise(rows)
    summary.update(voice=voice, gap_seconds=gap, seconds=round(time.monotonic() - started),
                   pss_idle_mb=None if live.pss_idle_mb is None else round(live.pss_idle_mb),
                   pss_call_mb=None if live.pss_call_mb is None else round(live.pss_call_mb),
                   alone_call_mb=live.alone_call_mb,
                   llm=settings.llm.model, asr_model=settings.models.asr_model,
                   sample_rate=settings.audio.sample_rate)
    print(format_report(rows, summary), file=out)
    if json_path is not None:
        json_path.write_text(json.dumps({"summary": summary, "rows": [asdict(r) for r in rows],
                                         "pss_call_breakdown_mb": live.pss_call_breakdown},
                                        indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}", file=out)
    return 0


def _no_callbacks(daemon) -> None:
    """A timer set in the bench must not ring the test phone in the middle of the call."""

    class NoCalls:
        def place(self, **_kwargs):
            raise RuntimeError("bench answers: timers do not call back")

    daemon.schedules.placer = NoCalls()


def format_report(rows: list[Row], summary: dict) -> str:
    fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    lines = [f"{'#':>3} {'cat':8} {'outcome':7} {'path':6} {'ms':>5} {'wer':>4}  heard -> answer"]
    for r in rows:
        mark = " NONSENSE" if r.nonsense else ""
        lines.append(f"{r.index:3} {r.category:8} {r.outcome:7} {r.path:6} "
                     f"{fmt(r.latency_ms):>5} {r.heard_wer:4.2f}  {r.heard[:34]} -> "
                     f"{r.answer[:44]}{mark}")
    lines.append("")
    lines.append(f"{'category':10} {'n':>3} {'right':>5} {'reask':>5} {'wrong':>5} "
                 f"{'missed':>6} {'accuracy':>8}")
    for category, c in summary["by_category"].items():
        lines.append(f"{category:10} {c['n']:3} {c['right']:5} {c['reask']:5} {c['wrong']:5} "
                     f"{c['missed']:6} {c['accuracy']:8.0%}")
    lines.append("")
    for path, l in summary["latency"].items():
        lines.append(f"voice-to-voice {path:6}: p50 {l['p50_ms']} ms, p90 {l['p90_ms']} ms "
                     f"(n={l['n']})")
    tool_accuracy = summary["tool_accuracy"]
    lines.append(f"tool questions right: {'-' if tool_accuracy is None else f'{tool_accuracy:.0%}'}"
                 f" (target >= 97%); nonsense answers to misheard questions: "
                 f"{summary['nonsense']} (target 0); re-asks {summary['reasks']}; PSS idle "
                 f"{fmt(summary['pss_idle_mb'])} MB, in the call {fmt(summary['pss_call_mb'])} "
                 f"MB (target <= 1200; alone on a box {fmt(summary.get('alone_call_mb'))} MB)")
    return "\n".join(lines)
