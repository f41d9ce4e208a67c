"""`sipassist bench api`: the API's responsiveness during a call, and what API work costs a call.

A daemon is started in this process and a test phone calls it three times with the same
questions (as `bench call` does):
1. alone: the baseline latency of each turn;
2. while 50 clients each GET /health ten times a second: /health p50/p99 (target p99 <= 20 ms);
3. while one client transcribes and another synthesises back to back through /v1 ("full
   rate"): the slowdown of the call's turns against the baseline (target <= 10%), and how much
   API work got through (calls come first: the rest waits or gets 503). The slowdown is of the
   daemon's share of each turn (ASR waited for, the first sentence decided and synthesised, from
   the transcript); voice-to-voice at the phone is shown too, but a long answer still playing
   into the next question blurs it.
The load runs in its own process (sipassist/bench/api_load.py), so it never holds this GIL.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

from ..config import LimitSettings, Settings
from ..telephony.events import CALL_CLOSED, CALL_ESTABLISHED
from ..voice.asr import read_wav
from . import call as bench_call
from .phone import TestPhone

HEALTH_CLIENTS = 50
HEALTH_INTERVAL = 0.1  # each client polls 10 times a second: 500 requests/s in all
HEALTH_P99_TARGET_MS = 20.0
SLOWDOWN_TARGET = 0.10
UNLIMITED = LimitSettings(**{f.name: 0 for f in fields(LimitSettings)})


def _one_call(daemon, phone: TestPhone, settings: Settings, asked: list[str]):
    """The turns of one call, and the JACK cycles its audio missed meanwhile (clicks)."""
    xruns = daemon.switchboard.bridge.xruns
    track, ends = bench_call._question_track(daemon, asked)
    phone.set_speech(track, settings.audio.sample_rate)
    phone.command("dial", f"sip:{settings.sip.user}@{settings.sip.listen}")
    phone.wait_event(CALL_ESTABLISHED, timeout=30)
    phone.wait_event(CALL_CLOSED, timeout=len(asked) * (bench_call.GAP_SECONDS + 8) + 60)
    daemon.queue.wait_idle(timeout=30)
    heard, rate = read_wav(phone.recording())
    record = daemon.queue.recent(1, "inbound")[0]
    turns = bench_call._turns(record.transcript, asked, ends, heard, rate, settings)
    return turns, daemon.switchboard.bridge.xruns - xruns


def _with_load(args: list[str], run):
    """Run `run()` while the load process runs; returns (run's result, the load's result)."""
    load = subprocess.Popen([sys.executable, "-m", "sipassist.bench.api_load", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        result = run()
    finally:
        out, _ = load.communicate("", timeout=300)  # closing stdin ends the load
    return result, json.loads(out.strip().splitlines()[-1])


def _latencies(turns) -> list[float]:
    return [t.latency_ms for t in turns if t.latency_ms is not None]


def _work_ms(turns) -> list[float]:
    """The daemon's own share of each turn: ASR waited for, deciding the first sentence,
    synthesising it (from the transcript; the audio path and endpointing are constant)."""
    return [(t.asr_ms or 0) + t.decide_ms + (t.tts_first_ms or 0) for t in turns
            if t.decide_ms is not None]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run(base: Settings, questions: int = 6, json_path: Path | None = None) -> int:
    from ..daemon import Daemon

    asked = (bench_call.QUESTIONS * 2)[:questions]
    with tempfile.TemporaryDirectory(prefix="sipassist-bench-api-") as tmp:
        work = Path(tmp)
        free = (p for p in range(31000, 60000, 100) if bench_call._port_block_free(p))
        daemon_port, phone_port = next(free), next(free)
        settings = bench_call._settings(base, work, daemon_port, phone_port)
        # Full rate means past the default per-client limits: lift them for the load.
        settings = replace(settings, api=replace(settings.api, limits=UNLIMITED))
        daemon = Daemon(settings)
        if not daemon.start(ready_timeout=60):
            print("bench api: the daemon did not become ready")
            return 1
        url = f"http://127.0.0.1:{daemon.api.port}"
        phone = TestPhone(work / "phone", phone_port, phone_port + 5,
                          f"{phone_port + 10}-{phone_port + 99}", answermode="auto")
        try:
            print("call 1/3: alone (baseline)", flush=True)
            baseline = _one_call(daemon, phone, settings, asked)
            print(f"call 2/3: with {HEALTH_CLIENTS} clients on /health", flush=True)
            health_turns, health = _with_load(
                ["health", url, str(HEALTH_CLIENTS), str(HEALTH_INTERVAL)],
                lambda: _one_call(daemon, phone, settings, asked))
            print("call 3/3: with ASR and TTS through the API at full rate", flush=True)
            started = time.monotonic()
            loaded, models = _with_load(["models", url],
                                        lambda: _one_call(daemon, phone, settings, asked))
            loaded_seconds = time.monotonic() - started
            busy = {m: daemon.metrics.registry.get_sample_value(
                "sipassist_api_model_busy_total", {"model": m}) for m in ("asr", "tts")}
        finally:
            phone.stop()
            daemon.stop()
    xruns = {"alone": baseline[1], "health_load": health_turns[1], "api_load": loaded[1]}
    _report(baseline[0], health_turns[0], health, loaded[0], models, loaded_seconds, busy,
            xruns, json_path)
    return 0


def _report(baseline, health_turns, health, loaded, models, loaded_seconds, busy, xruns,
            json_path: Path | None) -> None:
    fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    health_ms = health["latencies_ms"]
    p50 = bench_call._percentile(health_ms, 0.5)
    p99 = bench_call._percentile(health_ms, 0.99)
    base_p50 = _median(_latencies(baseline))
    load_p50 = _median(_latencies(loaded))
    base_work, load_work = _median(_work_ms(baseline)), _median(_work_ms(loaded))
    slowdown = None if not base_work or load_work is None else load_work / base_work - 1
    # Per question: the same question's turn alone and under load.
    print(f"\n{'':32} {'voice-to-voice at the phone':>27}   {'the daemon (asr+decide+tts)':>27}")
    print(f"{'question':32} {'alone':>8} {'health':>8} {'api':>8}   {'alone':>8} {'health':>8} "
          f"{'api':>8}")
    work = lambda t: None if t.decide_ms is None else \
        (t.asr_ms or 0) + t.decide_ms + (t.tts_first_ms or 0)  # noqa: E731
    for alone, with_health, with_api in zip(baseline, health_turns, loaded):
        print(f"{alone.question[:32]:32} {fmt(alone.latency_ms):>8} "
              f"{fmt(with_health.latency_ms):>8} {fmt(with_api.latency_ms):>8}   "
              f"{fmt(work(alone)):>8} {fmt(work(with_health)):>8} {fmt(work(with_api)):>8}")
    counts = models.get("counts", {})
    done = {kind: counts.get(kind, {}).get("200", 0) for kind in ("asr", "tts")}
    summary = {
        "health_clients": HEALTH_CLIENTS, "health_interval_seconds": HEALTH_INTERVAL,
        "health_requests": len(health_ms), "health_errors": health["error_count"],
        "health_p50_ms": p50, "health_p99_ms": p99,
        "health_p99_target_ms": HEALTH_P99_TARGET_MS,
        "health_p99_ok": bool(p99 is not None and p99 <= HEALTH_P99_TARGET_MS),
        "turn_p50_alone_ms": base_p50, "turn_p50_with_health_load_ms":
            _median(_latencies(health_turns)),
        "turn_p50_with_api_load_ms": load_p50,
        "daemon_turn_ms_alone": base_work, "daemon_turn_ms_with_api_load": load_work,
        "daemon_turn_ms_with_health_load": _median(_work_ms(health_turns)),
        "turn_slowdown": None if slowdown is None else round(slowdown, 3),
        "turn_slowdown_target": SLOWDOWN_TARGET,
        "turn_slowdown_ok": bool(slowdown is not None and slowdown <= SLOWDOWN_TARGET),
        "api_requests_during_call": counts, "api_ok_per_minute": {
            kind: round(n * 60 / loaded_seconds, 1) for kind, n in done.items()},
        "api_busy_503": busy,
        "audio_xruns": xruns,
    }
    print(f"\n/health with {HEALTH_CLIENTS} clients (each every {HEALTH_INTERVAL} s) during a "
          f"call: p50 {p50} ms, p99 {p99} ms "
          f"over {len(health_ms)} requests, {health['error_count']} errors "
          f"(target p99 <= {HEALTH_P99_TARGET_MS:.0f} ms: "
          f"{'met' if summary['health_p99_ok'] else 'NOT met'})")
    print(f"voice-to-voice p50 at the phone: {fmt(base_p50)} ms alone, {fmt(load_p50)} ms with "
          f"ASR+TTS API load at full rate")
    print(f"the daemon's share of a turn, median: {fmt(base_work)} ms alone, {fmt(load_work)} ms "
          f"with that load: slowdown "
          f"{'-' if slowdown is None else f'{slowdown * 100:+.1f}%'} (target <= "
          f"{SLOWDOWN_TARGET * 100:.0f}%: {'met' if summary['turn_slowdown_ok'] else 'NOT met'})")
    print(f"API work done during that call: {done['asr']} transcriptions, {done['tts']} "
          f"syntheses ({counts}); 503 for calls first: {busy}")
    print(f"JACK cycles the call audio missed (clicks): {xruns}")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({
            "summary": summary,
            "turns": {"alone": [t.__dict__ for t in baseline],
                      "health_load": [t.__dict__ for t in health_turns],
                      "api_load": [t.__dict__ for t in loaded]}}, indent=2,
            default=lambda value: value.item() if hasattr(value, "item") else str(value)))
        print(f"wrote {json_path}")
