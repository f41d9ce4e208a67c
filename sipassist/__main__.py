"""Command line: `sipassist run`, `check`, `models`, `keys`, `bench`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# Before any model library loads OpenMP: busy-waiting threads starve ASR, LLM and TTS of the
# few cores a Pi has (decode fell from ~10 to <2 tokens/s here without it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import __version__
from .config import ConfigError, load


def _configure_logging(verbose: bool) -> None:
    # The journal with CALL_ID/EXTENSION fields under systemd, stderr lines otherwise.
    from .logs import configure

    configure(verbose)


def _cmd_run(args: argparse.Namespace) -> int:
    import logging

    from .daemon import Daemon
    from .telephony.switchboard import TelephonyStartError

    settings = load(args.config)
    try:
        Daemon(settings).run_until_signalled()
    except TelephonyStartError as exc:  # the cause is known: say it, no traceback
        logging.getLogger("sipassist").error("cannot start telephony: %s", exc)
        return 1
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import describe_models

    settings = load(args.config)
    for line in describe_models(settings.models, settings.paths.models):
        print(line)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from .check import run

    return run(args.config)


def _cmd_keys(args: argparse.Namespace) -> int:
    from .keys_cli import run

    return run(load(args.config), args)


def _cmd_bench(args: argparse.Namespace) -> int:
    settings = load(args.config)
    if args.what == "asr" and args.rejudge:
        from .bench.asr_set import rejudge

        return rejudge(args.rejudge)
    if args.what == "asr" and args.set:
        from .bench.asr_set import run as run_set

        bias = {"both": (False, True), "off": (False,), "on": (True,)}[args.bias]
        return run_set(settings, audio_dir=args.audio_dir, voices=args.voices,
                       codecs=args.codecs, noisy=args.noisy, every=args.every,
                       bias_modes=bias, json_path=args.json)
    if args.what == "llm":
        from .bench.llm import run as run_llm

        return run_llm(settings, models=args.llm, json_path=args.json)
    if args.what == "render-set":
        from .bench.asr_set import render_set

        return render_set(settings, args.audio_dir, args.voices)
    if args.what == "asr":
        from .bench.asr import run

        return run(settings, repeat=args.repeat, json_path=args.json)
    if args.what == "health":
        from .bench.health import run as run_health

        return run_health(settings, args.url, args.clients, args.requests, args.json)
    if args.what == "call":
        from .bench.call import run as run_call

        return run_call(settings, questions=args.questions, json_path=args.json)
    if args.what == "recovery":
        from .bench.recovery import run as run_recovery

        return run_recovery(json_path=args.json)
    if args.what == "store":
        from .bench.store import run as run_store

        return run_store(settings, sizes=tuple(args.history), posts=args.posts,
                         directory=args.dir, json_path=args.json)
    if args.what == "knowledge":
        from .bench.knowledge import run as run_knowledge

        return run_knowledge(settings, json_path=args.json)
    if args.what == "api":
        from .bench.api import run as run_api

        stamp = time.strftime("%Y%m%d-%H%M%S")
        return run_api(settings, questions=args.questions,
                       json_path=args.json or Path("bench-results") / f"api-{stamp}.json")
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sipassist", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sipassist {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("run", _cmd_run, "run the daemon in the foreground"),
        ("models", _cmd_models, "show which model weights are installed and where"),
        ("check", _cmd_check, "check this box can run the daemon: config, models, jackd,"
                              " baresip, ports; one line each with the fix"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--config", type=Path, default=None,
                             help="config file (default /etc/sipassist/sipassist.toml if present)")
        command.set_defaults(func=func)
    keys = commands.add_parser("keys", help="API keys: create NAME (prints the key once), "
                                            "list, revoke NAME")
    from .keys_cli import add_arguments

    add_arguments(keys)
    keys.add_argument("--config", type=Path, default=None,
                      help="config file (default /etc/sipassist/sipassist.toml if present)")
    keys.set_defaults(func=_cmd_keys)
    bench = commands.add_parser("bench", help="measure the installed models on this machine")
    bench.add_argument("what", choices=["asr", "call", "recovery", "health", "store",
                                        "render-set", "llm", "knowledge", "api"],
                       help="asr: Whisper latency and word error rate; call: voice-to-voice "
                            "latency of real calls over loopback; recovery: time to recover "
                            "from kill -9 of jackd (5 times) and baresip (3 times); health: "
                            "GET /health latency of a running daemon under concurrent clients; "
                            "store: POST /call latency with a long call history; render-set: "
                            "speak the phone-line test set (bench/answers_set.toml) in every "
                            "voice; llm: the local models on the set's general questions; "
                            "knowledge: insert rate, query latency and recall of the knowledge "
                            "base (JSON in bench-results/knowledge.json unless --json); api: "
                            "/health latency and the cost of API model work to a live call "
                            "(JSON in bench-results/)")
    bench.add_argument("--llm", default="qwen-0.5b",
                       help="llm: comma-separated models (default qwen-0.5b; also qwen-1.5b)")
    bench.add_argument("--set", action="store_true",
                       help="asr: the phone-line test set through codecs and noise, WER and "
                            "what the rules make of it, with and without the tools' prompt")
    bench.add_argument("--audio-dir", type=Path,
                       default=Path("bench-results/answers-set-audio"), metavar="DIR",
                       help="where render-set keeps the set's audio (default %(default)s)")
    bench.add_argument("--voices", default=None,
                       help="comma-separated voices (default all: piper, piper-high, "
                            "piper-low, espeak-us, espeak-gb-f)")
    bench.add_argument("--codecs", default=None,
                       help="comma-separated codecs for --set (default ulaw,alaw,g722)")
    bench.add_argument("--noisy", default="ulaw",
                       help="codecs also run with 20 dB pink noise (default ulaw; '' none)")
    bench.add_argument("--every", type=int, default=1, metavar="N",
                       help="--set: every Nth utterance only (default 1: all)")
    bench.add_argument("--bias", choices=["both", "off", "on"], default="both",
                       help="--set: transcribe without and/or with the tools' prompt")
    bench.add_argument("--rejudge", type=Path, default=None, metavar="JSON",
                       help="asr: judge the transcripts of an earlier --set run again with "
                            "today's rules and confidence thresholds (no ASR)")
    bench.add_argument("--questions", type=int, default=6, metavar="N",
                       help="questions asked in `bench call` (default 6)")
    bench.add_argument("--config", type=Path, default=None,
                       help="config file (default /etc/sipassist/sipassist.toml if present)")
    bench.add_argument("--json", type=Path, default=None, metavar="PATH",
                       help="also write the rows as JSON to PATH")
    bench.add_argument("--repeat", type=int, default=3, metavar="N",
                       help="runs per sentence and path; the median is reported (default 3)")
    bench.add_argument("--url", default=None, help="bench health: the API's base URL "
                                                   "(default http://127.0.0.1:<[api] port>)")
    bench.add_argument("--clients", type=int, default=200, metavar="N",
                       help="bench health: concurrent clients (default 200)")
    bench.add_argument("--requests", type=int, default=20, metavar="N",
                       help="bench health: requests per client (default 20)")
    bench.add_argument("--history", type=int, nargs="+", default=[20_000, 100_000],
                       metavar="N", help="past calls in `bench store` (default 20000 100000)")
    bench.add_argument("--posts", type=int, default=50, metavar="N",
                       help="POST /call requests timed in `bench store` (default 50)")
    bench.add_argument("--dir", type=Path, default=None, metavar="DIR",
                       help="where `bench store` puts its state (default: a temporary "
                            "directory; use the state directory's filesystem)")
    bench.set_defaults(func=_cmd_bench)
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"sipassist: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
