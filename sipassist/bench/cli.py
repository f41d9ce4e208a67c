"""`sipassist bench KIND [options]`: one subcommand per benchmark, each with its own options.

Each runner imports its benchmark only when chosen: most of them load models.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..config import Settings, load

CONFIG_HELP = "config file (default /etc/sipassist/sipassist.toml if present)"


def _asr(settings: Settings, args: argparse.Namespace) -> int:
    if args.live:
        from .asr_live import run as run_live

        return run_live(settings, args.audio_dir, count=args.count, voice=args.voices or "piper",
                        gap=args.gap, json_path=args.json or _stamped("asr-live"))
    if args.rejudge:
        from .asr_set import rejudge

        return rejudge(args.rejudge)
    if args.set:
        from .asr_set import run as run_set

        bias = {"both": (False, True), "off": (False,), "on": (True,)}[args.bias]
        return run_set(settings, audio_dir=args.audio_dir, voices=args.voices,
                       codecs=args.codecs, noisy=args.noisy, every=args.every,
                       bias_modes=bias, json_path=args.json)
    from .asr import run

    return run(settings, repeat=args.repeat, json_path=args.json)


def _stamped(name: str) -> Path:
    """bench-results/<name>-<time>.json, the default for benchmarks that always write."""
    Path("bench-results").mkdir(exist_ok=True)
    return Path("bench-results") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"


def _answers(settings: Settings, args: argparse.Namespace) -> int:
    from .answers_live import run

    return run(settings, args.audio_dir, count=args.count, voice=args.voices or "piper",
               gap=args.gap, json_path=args.json or _stamped("answers"))


def _memory(settings: Settings, args: argparse.Namespace) -> int:
    from .memory import run

    return run(settings, json_path=args.json or _stamped("memory"))


def _render_set(settings: Settings, args: argparse.Namespace) -> int:
    from .asr_set import render_set

    return render_set(settings, args.audio_dir, args.voices)


def _llm(settings: Settings, args: argparse.Namespace) -> int:
    from .llm import run

    return run(settings, models=args.llm, json_path=args.json)


def _call(settings: Settings, args: argparse.Namespace) -> int:
    from .call import run

    return run(settings, questions=args.questions, json_path=args.json,
               concurrent=args.concurrent)


def _recovery(settings: Settings, args: argparse.Namespace) -> int:
    from .recovery import run

    return run(json_path=args.json)


def _health(settings: Settings, args: argparse.Namespace) -> int:
    from .health import run

    return run(settings, args.url, args.clients, args.requests, args.json)


def _store(settings: Settings, args: argparse.Namespace) -> int:
    from .store import run

    return run(settings, sizes=tuple(args.history), posts=args.posts, directory=args.dir,
               json_path=args.json)


def _knowledge(settings: Settings, args: argparse.Namespace) -> int:
    from .knowledge import run

    return run(settings, json_path=args.json)


def _api(settings: Settings, args: argparse.Namespace) -> int:
    from .api import run

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return run(settings, questions=args.questions,
               json_path=args.json or Path("bench-results") / f"api-{stamp}.json")


def _turn(settings: Settings, args: argparse.Namespace) -> int:
    from .turn import run

    return run(settings, voices=args.voices, every=args.every, codec=args.codec,
               json_path=args.json)


def _resample(settings: Settings, args: argparse.Namespace) -> int:
    from .resample import run

    return run(seconds=args.seconds, json_path=args.json)


def _set_audio_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio-dir", type=Path,
                        default=Path("bench-results/answers-set-audio"), metavar="DIR",
                        help="where render-set keeps the set's audio (default %(default)s)")
    parser.add_argument("--voices", default=None,
                        help="comma-separated voices (default all: piper, piper-high, "
                             "piper-low, espeak-us, espeak-gb-f)")


def _questions(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument("--questions", type=int, default=default, metavar="N",
                        help=f"questions asked over the call (default {default})")


def add_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="measure this machine: models, calls, the API, "
                                              "recovery, storage (tables, JSON with --json)")
    kinds = bench.add_subparsers(dest="kind", required=True, metavar="KIND")

    def kind(name: str, run, text: str) -> argparse.ArgumentParser:
        parser = kinds.add_parser(name, help=text, description=text)
        parser.add_argument("--config", type=Path, default=None, help=CONFIG_HELP)
        parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                            help="also write the rows as JSON to PATH")
        parser.set_defaults(func=lambda args: run(load(args.config), args))
        return parser

    asr = kind("asr", _asr, "Whisper latency and word error rate on phone-quality speech; "
                            "--set: the phone-line test set through codecs and noise")
    asr.add_argument("--repeat", type=int, default=3, metavar="N",
                     help="runs per sentence and path; the median is reported (default 3)")
    asr.add_argument("--set", action="store_true",
                     help="the phone-line test set (bench/answers_set.toml) through codecs and "
                          "noise: WER and what the rules make of it, with and without the "
                          "tools' prompt (render it first with `bench render-set`)")
    _set_audio_options(asr)
    asr.add_argument("--codecs", default=None,
                     help="--set: comma-separated codecs (default ulaw,alaw,g722)")
    asr.add_argument("--noisy", default="ulaw",
                     help="--set: codecs also run with 20 dB pink noise (default ulaw; '' none)")
    asr.add_argument("--every", type=int, default=1, metavar="N",
                     help="--set: every Nth utterance only (default 1: all)")
    asr.add_argument("--bias", choices=["both", "off", "on"], default="both",
                     help="--set: transcribe without and/or with the tools' prompt")
    asr.add_argument("--live", action="store_true",
                     help="N utterances of the set through a real call: WER of what the "
                          "daemon heard vs. the same audio offline after a mu-law round trip "
                          "(JSON in bench-results/ unless --json)")
    asr.add_argument("--count", type=int, default=20, metavar="N",
                     help="--live: utterances said (default 20, spread over the set)")
    asr.add_argument("--gap", type=float, default=8.0, metavar="S",
                     help="--live: seconds after each utterance, for the answer (default 8)")
    asr.add_argument("--rejudge", type=Path, default=None, metavar="JSON",
                     help="judge the transcripts of an earlier --set run again with today's "
                          "rules and confidence thresholds (no ASR)")
    _set_audio_options(kind("render-set", _render_set,
                            "speak the phone-line test set in every voice"))
    kind("llm", _llm, "the local models on the test set's general questions").add_argument(
        "--llm", default="qwen-0.5b",
        help="comma-separated models (default qwen-0.5b; also qwen-1.5b)")
    call = kind("call", _call, "real calls over loopback: voice-to-voice latency, "
                               "p50/p90, breakdown")
    _questions(call, 6)
    call.add_argument("--concurrent", type=int, default=1, metavar="N",
                      help="then N conversations at once (p50/p90 beside the single call's; "
                           "JSON in bench-results/ unless --json)")
    kind("recovery", _recovery, "kill -9 jackd 5 times and baresip 3 times: seconds until "
                                "healthy")
    health = kind("health", _health, "GET /health of a running daemon under concurrent "
                                     "clients")
    health.add_argument("--url", default=None,
                        help="the API's base URL (default http://127.0.0.1:<[api] port>)")
    health.add_argument("--clients", type=int, default=200, metavar="N",
                        help="concurrent clients (default 200)")
    health.add_argument("--requests", type=int, default=20, metavar="N",
                        help="requests per client (default 20)")
    store = kind("store", _store, "POST /call latency with a long call history")
    store.add_argument("--history", type=int, nargs="+", default=[20_000, 100_000],
                       metavar="N", help="past calls (default 20000 100000)")
    store.add_argument("--posts", type=int, default=50, metavar="N",
                       help="POST /call requests timed (default 50)")
    store.add_argument("--dir", type=Path, default=None, metavar="DIR",
                       help="where the state goes (default: a temporary directory; use the "
                            "state directory's filesystem)")
    answers = kind("answers", _answers, "the test set through real calls: answers checked "
                                        "against the expected values per category, "
                                        "voice-to-voice p50/p90 per path, re-asks, PSS "
                                        "(JSON in bench-results/ unless --json)")
    _set_audio_options(answers)
    answers.add_argument("--count", type=int, default=30, metavar="N",
                         help="utterances said, spread over the set, the last a goodbye "
                              "(default 30; 157 for all)")
    answers.add_argument("--gap", type=float, default=9.0, metavar="S",
                         help="seconds after each utterance, for the answer (default 9)")
    kind("memory", _memory, "the daemon's PSS with every model loaded, idle and in a call, "
                            "by mapping (JSON in bench-results/ unless --json)")
    kind("knowledge", _knowledge, "knowledge base: insert rate, query latency, recall "
                                  "(JSON in bench-results/knowledge.json unless --json)")
    _questions(kind("api", _api, "/health latency during a call, and the cost of API model "
                                 "work to a live call's turns (JSON in bench-results/)"), 6)
    turn = kind("turn", _turn, "end of turn: false cut-offs at mid-sentence pauses and "
                               "endpointing delay, fixed pause vs. turn model (JSON in "
                               "bench-results/ unless --json)")
    turn.add_argument("--voices", default=None,
                      help="comma-separated voices (default piper,piper-high,piper-low,"
                           "espeak-us)")
    turn.add_argument("--every", type=int, default=4, metavar="N",
                      help="every Nth question of the test set as a complete one (default 4)")
    turn.add_argument("--codec", choices=["ulaw", "alaw", "none"], default="ulaw",
                      help="the phone line the speech goes through (default ulaw)")
    resample = kind("resample", _resample, "the resampler: CPU per call-second and quality "
                                           "(JSON in bench-results/ unless --json)")
    resample.add_argument("--seconds", type=float, default=30.0, metavar="S",
                          help="seconds of audio per measurement (default 30)")
