"""`sipassist bench call`: voice-to-voice latency of real calls over loopback.

A test phone (a second baresip) calls a daemon started in this process and asks questions
spoken by Piper, with pauses long enough for each answer. Latency is measured at the phone:
from the true end of each question (known from the WAV it plays) to the first audio of the
reply in its recording. The daemon's transcript gives the breakdown (ASR, deciding the first
sentence, synthesising it); endpointing is the configured silence; the rest is the audio path.
ASR done early, during the endpointer's wait, is shown apart: it adds nothing.

With `--concurrent N`, the same daemon then takes N such conversations at once (N phones
calling together, each 0.3 s after the one before, so turns overlap and contend for the
shared models), and the table sets their p50/p90 beside the single call's from the same run.
"""

from __future__ import annotations

import json
import logging
import resource
import socket
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import Settings, parse
from ..telephony.events import CALL_CLOSED, CALL_ESTABLISHED
from ..voice.asr import read_wav
from .memory import pss_mb as memory_pss_mb
from .phone import TestPhone

log = logging.getLogger(__name__)

QUESTIONS = [
    "What time is it in Tokyo?",
    "What's 25 times 4 plus 10?",
    "What's the date today?",
    "What is 7 divided by 2?",
    "Add 12 and 30.",  # the rules miss it: the model picks the tool
    "Tell me a joke.",
    "What time is it in London?",
    "What's 12 times 12?",
    "Why is the sky blue?",
]
GAP_SECONDS = 9.0  # after each question: room for the longest answer before the next one
ONSET_DBFS = -45.0  # a 20 ms frame this loud at the phone is reply audio
QUIET_BEFORE = 0.3  # seconds before a question's end that must be quiet to time the reply


@dataclass
class Turn:
    question: str
    latency_ms: float | None
    asr_ms: int | None  # waited for after the endpoint
    early_asr_ms: int | None  # done while the endpointer waited (hidden)
    decide_ms: int | None
    tts_first_ms: int | None
    endpoint_ms: int
    audio_path_ms: float | None
    tool: str | None
    heard: str  # what ASR made of the question
    answer: str


STAGGER_SECONDS = 0.3  # between the phones of a concurrent run: their turns overlap


def _settings(base: Settings, work: Path, daemon_port: int, phone_port: int,
              concurrent: int = 1) -> Settings:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        api_port = sock.getsockname()[1]
    return parse({
        "sip": {"listen": f"127.0.0.1:{daemon_port}", "interface": "127.0.0.1",
                "dns_server": "127.0.0.1:53", "ctrl_port": daemon_port + 5,
                "rtp_ports": f"{daemon_port + 10}-{daemon_port + 99}",
                "dial_domain": f"127.0.0.1:{phone_port}"},
        "api": {"host": "127.0.0.1", "port": api_port},
        "audio": {"jack_server": f"sipassist-bench-{daemon_port}",
                  "sample_rate": base.audio.sample_rate, "period": base.audio.period},
        "paths": {"state_dir": str(work / "state"), "runtime_dir": str(work / "run"),
                  "models_dir": str(base.paths.models)},
        "models": {"tts_voice": base.models.tts_voice, "asr_model": base.models.asr_model},
        "listening": asdict(base.listening),
        "llm": asdict(base.llm),
        "conversation": {**asdict(base.conversation), "idle_seconds": GAP_SECONDS + 10},
        "queue": {"max_concurrent": max(1, concurrent)},
    })


def _onset_after(samples: np.ndarray, rate: int, start: float, limit: float) -> float | None:
    """Seconds of the first loud 20 ms frame in [start, limit); None when the phone was still
    hearing something over QUIET_BEFORE s before `start` (a long reply to the question before
    runs on: its tail would pass for a fast answer)."""
    frame = rate // 50
    threshold = 10 ** (ONSET_DBFS / 20)
    before = samples[max(0, int((start - QUIET_BEFORE) * rate)):int(start * rate)]
    if len(before) and np.sqrt(np.mean(before ** 2)) > threshold:
        return None
    first, last = int(start * rate), min(len(samples), int(limit * rate))
    for at in range(first, last - frame, frame):
        chunk = samples[at:at + frame]
        if np.sqrt(np.mean(chunk ** 2)) > threshold:
            return at / rate
    return None


def run(base: Settings, questions: int = 6, json_path: Path | None = None,
        concurrent: int = 1) -> int:
    from ..daemon import Daemon

    asked = (QUESTIONS * 2)[:questions]
    with tempfile.TemporaryDirectory(prefix="sipassist-bench-") as tmp:
        work = Path(tmp)
        free = (p for p in range(31000, 60000, 100) if _port_block_free(p))
        daemon_port = next(free)
        phone_ports = [next(free) for _ in range(max(1, concurrent))]
        settings = _settings(base, work, daemon_port, phone_ports[0], concurrent)
        started = time.monotonic()
        daemon = Daemon(settings)
        load_seconds = time.monotonic() - started
        if not daemon.start(ready_timeout=60):
            print("bench call: the daemon did not become ready")
            return 1
        phones = [TestPhone(work / f"phone{n}", port, port + 5, f"{port + 10}-{port + 99}",
                            answermode="auto", user=f"bench{n}")
                  for n, port in enumerate(phone_ports)]
        try:
            single, cpu = _conversations(daemon, settings, phones[:1], asked)
            pss_mb = memory_pss_mb()  # weights shared by the contexts count once
            together = None
            if concurrent > 1:
                together, _ = _conversations(daemon, settings, phones, asked)
        finally:
            for phone in phones:
                phone.stop()
            daemon.stop()
    turns = single[0]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _report(turns, rss_mb, pss_mb, cpu, load_seconds, settings,
            None if together else json_path)
    if together:
        _report_concurrent(turns, together, settings, json_path)
    return 0


def _conversations(daemon, settings: Settings, phones: list[TestPhone], asked: list[str]
                   ) -> tuple[list[list[Turn]], float]:
    """Each phone calls the daemon (a second apart) and asks `asked`; the turns per phone,
    and the CPU cores the daemon's process used meanwhile."""
    track, ends = _question_track(daemon, asked)
    rate = settings.audio.sample_rate
    for phone in phones:
        phone.set_speech(track, rate)
    cpu_before, wall_before = time.process_time(), time.monotonic()
    for n, phone in enumerate(phones):
        if n:
            time.sleep(STAGGER_SECONDS)  # a deliberate offset between callers, not a wait
        phone.command("dial", f"sip:{settings.sip.user}@{settings.sip.listen}")
        phone.wait_event(CALL_ESTABLISHED, timeout=30)
    for phone in phones:
        phone.wait_event(CALL_CLOSED, timeout=len(asked) * (GAP_SECONDS + 8) + 60)
    daemon.queue.wait_idle(timeout=30)
    cpu = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
    records = daemon.queue.recent(len(phones), "inbound")
    results = []
    for phone in phones:
        record = next(r for r in records if f"sip:{phone.user}@" in r.dial_uri)
        heard, heard_rate = read_wav(phone.recording())
        results.append(_turns(record.transcript, asked, ends, heard, heard_rate, settings))
    return results, cpu


def _report_concurrent(single: list[Turn], together: list[list[Turn]], settings: Settings,
                       json_path: Path | None) -> None:
    """Voice-to-voice p50/p90: one call alone, then N at once (the same daemon and run)."""
    fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    rows = []
    for label, turns in (("1 call", single),
                         (f"{len(together)} calls at once", [t for ts in together for t in ts])):
        latencies = [t.latency_ms for t in turns if t.latency_ms is not None]
        answered = sum(bool(t.tool) or bool(t.answer) for t in turns)
        rows.append({"calls": label, "turns": len(turns), "measured": len(latencies),
                     "answered": answered, "p50_ms": _percentile(latencies, 0.5),
                     "p90_ms": _percentile(latencies, 0.9),
                     "max_ms": max(latencies) if latencies else None})
    print(f"\n{'calls':22} {'turns':>5} {'measured':>8} {'p50 ms':>7} {'p90 ms':>7} {'max ms':>7}")
    for row in rows:
        print(f"{row['calls']:22} {row['turns']:>5} {row['measured']:>8} {fmt(row['p50_ms']):>7} "
              f"{fmt(row['p90_ms']):>7} {fmt(row['max_ms']):>7}")
    path = json_path or Path("bench-results") / f"call-concurrent-{len(together)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "rows": rows, "stagger_seconds": STAGGER_SECONDS,
        "asr_model": settings.models.asr_model, "llm": settings.llm.backend,
        "single_turns": [asdict(t) for t in single],
        "concurrent_turns": [[asdict(t) for t in turns] for turns in together]}, indent=2))
    print(f"wrote {path}")


def _port_block_free(base: int) -> bool:
    """SIP (+0, TLS +1), ctrl (+5) and the first RTP port (+10) free on loopback."""
    try:
        for offset in (0, 1, 5, 10):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
                udp.bind(("127.0.0.1", base + offset))
                tcp.bind(("127.0.0.1", base + offset))
        return True
    except OSError:
        return False


def _question_track(daemon, asked: list[str]) -> tuple[np.ndarray, list[float]]:
    """The phone's speech: the greeting's length of silence, then each question and a gap."""
    rate = daemon.settings.audio.sample_rate
    speak = daemon.tts.synthesize
    greeting = len(speak(daemon.settings.conversation.greeting)) / rate
    pieces = [np.zeros(int((greeting + 1.5) * rate), np.float32)]
    ends, at = [], greeting + 1.5
    for question in [*asked, "Goodbye."]:
        audio = speak(question)
        # The true end of speech: Piper pads with a little silence.
        loud = np.nonzero(np.abs(audio) > 0.01)[0]
        ends.append(at + (loud[-1] + 1 if len(loud) else len(audio)) / rate)
        pieces += [audio, np.zeros(int(GAP_SECONDS * rate), np.float32)]
        at += len(audio) / rate + GAP_SECONDS
    return np.concatenate(pieces), ends[:-1]


def _turns(transcript, asked, ends, heard, rate, settings: Settings) -> list[Turn]:
    callers = [t for t in transcript if t["who"] == "caller"]
    replies = [t for t in transcript if t["who"] == "assistant"][1:]  # after the greeting
    endpoint_ms = int(settings.listening.silence_seconds * 1000)
    turns = []
    for index, question in enumerate(asked):
        onset = _onset_after(heard, rate, ends[index] + 0.05, ends[index] + GAP_SECONDS)
        latency = None if onset is None else (onset - ends[index]) * 1000
        caller = callers[index] if index < len(callers) else {}
        reply = replies[index] if index < len(replies) else {}
        asr = caller.get("timings", {}).get("asr_ms")
        early = caller.get("timings", {}).get("early_asr_ms")
        decide = reply.get("timings", {}).get("decide_ms")
        tts = reply.get("timings", {}).get("tts_first_ms")
        known = [v for v in (asr, decide, tts) if v is not None]
        path = (latency - endpoint_ms - sum(known)) if latency is not None else None
        turns.append(Turn(question, latency, asr, early, decide, tts, endpoint_ms, path,
                          reply.get("tool"), caller.get("text", ""), reply.get("text", "")))
    return turns


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _report(turns: list[Turn], rss_mb: float, pss_mb: float | None, cpu: float,
            load_seconds: float, settings: Settings, json_path: Path | None) -> None:
    print(f"{'question':32} {'latency':>8} {'endpt':>6} {'asr':>5} {'early':>5} {'decide':>6} "
          f"{'tts':>5} {'audio':>6}  answer")
    fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    for t in turns:
        print(f"{t.question[:32]:32} {fmt(t.latency_ms):>8} {t.endpoint_ms:>6} "
              f"{fmt(t.asr_ms):>5} {fmt(t.early_asr_ms):>5} {fmt(t.decide_ms):>6} {fmt(t.tts_first_ms):>5} "
              f"{fmt(t.audio_path_ms):>6}  [{t.tool or 'llm'}] {t.answer[:50]}")
    latencies = [t.latency_ms for t in turns if t.latency_ms is not None]
    summary = {
        "turns": len(turns), "measured": len(latencies),
        "p50_ms": _percentile(latencies, 0.5), "p90_ms": _percentile(latencies, 0.9),
        "median_asr_ms": statistics.median([t.asr_ms for t in turns if t.asr_ms] or [0]),
        "early_asr_turns": sum(t.early_asr_ms is not None for t in turns),
        "median_decide_ms": statistics.median([t.decide_ms for t in turns
                                               if t.decide_ms is not None] or [0]),
        "median_tts_first_ms": statistics.median([t.tts_first_ms for t in turns
                                                  if t.tts_first_ms is not None] or [0]),
        "endpointing_ms": int(settings.listening.silence_seconds * 1000),
        "peak_rss_mb": round(rss_mb),
        "pss_mb": None if pss_mb is None else round(pss_mb), "cpu_cores_used": round(cpu, 2),
        "model_load_seconds": round(load_seconds, 1),
        "asr_model": settings.models.asr_model, "llm": settings.llm.backend,
    }
    print(f"\nvoice-to-voice latency: p50 {fmt(summary['p50_ms'])} ms, "
          f"p90 {fmt(summary['p90_ms'])} ms over {len(latencies)} of {len(turns)} turns; "
          f"peak RSS {summary['peak_rss_mb']} MB (PSS {fmt(summary['pss_mb'])} MB); CPU {summary['cpu_cores_used']} cores "
          f"during the call; models loaded in {summary['model_load_seconds']} s")
    if json_path:
        json_path.write_text(json.dumps({"summary": summary,
                                         "turns": [asdict(t) for t in turns]}, indent=2))
        print(f"wrote {json_path}")
