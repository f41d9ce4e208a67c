"""`sipassist bench api`: the API's responsiveness during a call, and what API work costs a call.

A daemon is started in this process and a test phone calls it three times with the same
questions (as `bench call` does):
1. while 50 clients each GET /health ten times a second: /health p50/p99 (target p99 <= 20 ms);
2. and 3. while one client transcribes and another synthesises back to back through /v1 ("full
   rate") around every other question: the even ones in one call, the odd ones in the other.
   So each question is answered once with the API load and once without, minutes apart at
   most, and a busy machine's drift hits both alike. The slowdown (target <= 10%) is of the
   daemon's share of the turns, summed (ASR waited for, the first sentence decided and
   synthesised, from the transcript; the filler is off so slow answers are not cut at 1.5 s);
   voice-to-voice at the phone is shown too, but an answer still playing into the next
   question blurs it.
Also reported: how much API work got through (calls come first: the rest waits or gets 503),
and the JACK cycles the call audio missed (clicks) in each call.
The load runs in its own process (sipassist/bench/api_load.py), so it never holds this GIL.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
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
# The API load runs from this long before a question ends until this long after it.
LOAD_BEFORE, LOAD_AFTER = 4.0, 4.0
UNLIMITED = LimitSettings(**{f.name: 0 for f in fields(LimitSettings)})


def _one_call(daemon, phone: TestPhone, settings: Settings, asked: list[str],
              on_start=None):
    """The turns of one call, and the JACK cycles its audio missed meanwhile (clicks).

    `on_start(ends)` is called as the call is established, with the seconds from then at which
    each question ends."""
    xruns = daemon.switchboard.bridge.xruns
    track, ends = bench_call._question_track(daemon, asked)
    phone.set_speech(track, settings.audio.sample_rate)
    phone.command("dial", f"sip:{settings.sip.user}@{settings.sip.listen}")
    phone.wait_event(CALL_ESTABLISHED, timeout=30)
    if on_start:
        on_start(ends)
    phone.wait_event(CALL_CLOSED, timeout=len(asked) * (bench_call.GAP_SECONDS + 8) + 60)
    daemon.queue.wait_idle(timeout=30)
    heard, rate = read_wav(phone.recording())
    record = daemon.queue.recent(1, "inbound")[0]
    turns = bench_call._turns(record.transcript, asked, ends, heard, rate, settings)
    return turns, daemon.switchboard.bridge.xruns - xruns


def _start_load(args: list[str]) -> subprocess.Popen:
    load = subprocess.Popen([sys.executable, "-m", "sipassist.bench.api_load", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if args[0] == "models":
        load.stdout.readline()  # "ready": its sample WAV is made
    return load


def _end_load(load: subprocess.Popen) -> dict:
    out, _ = load.communicate("", timeout=300)  # closing stdin ends the load
    return json.loads(out.strip().splitlines()[-1])


def _switch_around(load: subprocess.Popen, loaded: list[int]):
    """on_start for _one_call: the load on around the questions at indexes `loaded`."""
    def on_start(ends: list[float]) -> None:
        start = time.monotonic()
        steps = sorted([(ends[i] - LOAD_BEFORE, "on") for i in loaded] +
                       [(ends[i] + LOAD_AFTER, "off") for i in loaded])

        def run() -> None:
            for at, command in steps:
                time.sleep(max(0.0, start + at - time.monotonic()))
                try:
                    load.stdin.write(command + "\n")
                    load.stdin.flush()
                except (BrokenPipeError, ValueError):
                    return
        threading.Thread(target=run, name="load-switch", daemon=True).start()
    return on_start


def _work(turn) -> float | None:
    """The daemon's own share of a turn: ASR waited for, deciding and synthesising the first
    sentence (the audio path and endpointing are constant)."""
    if turn.decide_ms is None:
        return None
    return (turn.asr_ms or 0) + turn.decide_ms + (turn.tts_first_ms or 0)


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def run(base: Settings, questions: int = 6, json_path: Path | None = None) -> int:
    from ..daemon import Daemon

    asked = (bench_call.QUESTIONS * 2)[:questions]
    with tempfile.TemporaryDirectory(prefix="sipassist-bench-api-") as tmp:
        work = Path(tmp)
        free = (p for p in range(31000, 60000, 100) if bench_call._port_block_free(p))
        daemon_port, phone_port = next(free), next(free)
        settings = bench_call._settings(base, work, daemon_port, phone_port)
        # Full rate means past the default per-client limits: lift them for the load. No
        # filler, so a slow first sentence is measured, not cut at the filler's 1.5 s.
        settings = replace(settings, api=replace(settings.api, limits=UNLIMITED),
                           conversation=replace(settings.conversation, filler_after_seconds=0))
        daemon = Daemon(settings)
        if not daemon.start(ready_timeout=60):
            print("bench api: the daemon did not become ready")
            return 1
        url = f"http://127.0.0.1:{daemon.api.port}"
        phone = TestPhone(work / "phone", phone_port, phone_port + 5,
                          f"{phone_port + 10}-{phone_port + 99}", answermode="auto")
        try:
            print(f"call 1/3: with {HEALTH_CLIENTS} clients on /health", flush=True)
            load = _start_load(["health", url, str(HEALTH_CLIENTS), str(HEALTH_INTERVAL)])
            try:
                health_call = _one_call(daemon, phone, settings, asked)
            finally:
                health = _end_load(load)
            calls, api_work = [], []
            for number, parity in ((2, 1), (3, 0)):
                which = [i for i in range(len(asked)) if i % 2 == parity]
                print(f"call {number}/3: ASR and TTS through the API at full rate around "
                      f"questions {[i + 1 for i in which]}", flush=True)
                load = _start_load(["models", url])
                try:
                    calls.append((_one_call(daemon, phone, settings, asked,
                                            _switch_around(load, which)), which))
                finally:
                    api_work.append(_end_load(load))
            busy = {m: daemon.metrics.registry.get_sample_value(
                "sipassist_api_model_busy_total", {"model": m}) for m in ("asr", "tts")}
        finally:
            phone.stop()
            daemon.stop()
    _report(asked, health_call, health, calls, api_work, busy, json_path)
    return 0


def _report(asked, health_call, health, calls, api_work, busy, json_path: Path | None) -> None:
    fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    # Per question: its turn with the API load and without (from the other call).
    rows = []
    for index, question in enumerate(asked):
        loaded = next(turns[index] for (turns, _), which in calls if index in which)
        alone = next(turns[index] for (turns, _), which in calls if index not in which)
        rows.append((question, alone, loaded))
    print(f"\n{'':32} {'daemon (asr+decide+tts) ms':>26}   {'voice-to-voice ms':>20}")
    print(f"{'question':32} {'alone':>12} {'API load':>12}   {'alone':>9} {'API load':>10}")
    for question, alone, loaded in rows:
        print(f"{question[:32]:32} {fmt(_work(alone)):>12} {fmt(_work(loaded)):>12}   "
              f"{fmt(alone.latency_ms):>9} {fmt(loaded.latency_ms):>10}")
    # Sums over the questions measured both ways: answers prepared during the endpointer's
    # wait cost ~0 ms, so a median would be 0; the model-answered turns carry the work.
    pairs = [(_work(alone), _work(loaded)) for _, alone, loaded in rows
             if _work(alone) is not None and _work(loaded) is not None]
    work_alone = sum(a for a, _ in pairs) if pairs else None
    work_loaded = sum(b for _, b in pairs) if pairs else None
    slowdown = None if not work_alone or work_loaded is None else work_loaded / work_alone - 1
    v2v_alone = _median(alone.latency_ms for _, alone, _ in rows)
    v2v_loaded = _median(loaded.latency_ms for _, _, loaded in rows)
    health_ms = health["latencies_ms"]
    p50 = bench_call._percentile(health_ms, 0.5)
    p99 = bench_call._percentile(health_ms, 0.99)
    done = {kind: sum(w.get("counts", {}).get(kind, {}).get("200", 0) for w in api_work)
            for kind in ("asr", "tts")}
    refused = {kind: sum(n for w in api_work for status, n in
                         w.get("counts", {}).get(kind, {}).items() if status != "200")
               for kind in ("asr", "tts")}
    xruns = {"health_load": health_call[1],
             **{f"api_load_call_{n}": result[1] for n, (result, _) in enumerate(calls, 2)}}
    summary = {
        "questions": len(asked),
        "health_clients": HEALTH_CLIENTS, "health_interval_seconds": HEALTH_INTERVAL,
        "health_requests": len(health_ms), "health_errors": health["error_count"],
        "health_p50_ms": p50, "health_p99_ms": p99,
        "health_p99_target_ms": HEALTH_P99_TARGET_MS,
        "health_p99_ok": bool(p99 is not None and p99 <= HEALTH_P99_TARGET_MS),
        "daemon_turns_ms_alone": work_alone, "daemon_turns_ms_with_api_load": work_loaded,
        "turns_paired": len(pairs),
        "turn_slowdown": None if slowdown is None else round(slowdown, 3),
        "turn_slowdown_target": SLOWDOWN_TARGET,
        "turn_slowdown_ok": bool(slowdown is not None and slowdown <= SLOWDOWN_TARGET),
        "voice_to_voice_p50_ms_alone": v2v_alone, "voice_to_voice_p50_ms_with_api_load":
            v2v_loaded,
        "api_requests_ok": done, "api_requests_refused": refused, "api_busy_503": busy,
        "audio_xruns": xruns,
    }
    print(f"\n/health with {HEALTH_CLIENTS} clients (each every {HEALTH_INTERVAL} s) during a "
          f"call: p50 {p50} ms, p99 {p99} ms over {len(health_ms)} requests, "
          f"{health['error_count']} errors (target p99 <= {HEALTH_P99_TARGET_MS:.0f} ms: "
          f"{'met' if summary['health_p99_ok'] else 'NOT met'})")
    print(f"the daemon's share of the {len(pairs)} turns, in all: {fmt(work_alone)} ms alone, "
          f"{fmt(work_loaded)} ms with ASR+TTS API load at full rate: slowdown "
          f"{'-' if slowdown is None else f'{slowdown * 100:+.1f}%'} (target <= "
          f"{SLOWDOWN_TARGET * 100:.0f}%: {'met' if summary['turn_slowdown_ok'] else 'NOT met'})")
    print(f"voice-to-voice p50 at the phone: {fmt(v2v_alone)} ms alone, {fmt(v2v_loaded)} ms "
          "with the load")
    print(f"API work done around the loaded questions: {done['asr']} transcriptions, "
          f"{done['tts']} syntheses; refused: {refused} (503 for calls first: {busy})")
    print(f"JACK cycles the call audio missed (clicks): {xruns}")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({
            "summary": summary,
            "turns": [{"question": q, "alone": a.__dict__, "api_load": b.__dict__}
                      for q, a, b in rows]}, indent=2,
            default=lambda value: value.item() if hasattr(value, "item") else str(value)))
        print(f"wrote {json_path}")
