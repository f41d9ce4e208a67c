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
    from .daemon import Daemon

    settings = load(args.config)
    Daemon(settings).run_until_signalled()
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
    if args.what == "asr":
        from .bench.asr import run

        return run(settings, repeat=args.repeat, json_path=args.json)
    if args.what == "health":
        from .bench.health import run as run_health

        return run_health(settings, args.url, args.clients, args.requests, args.json)
    if args.what == "call":
        from .bench.call import run as run_call

        return run_call(settings, questions=args.questions, json_path=args.json)
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
    bench.add_argument("what", choices=["asr", "call", "health", "api"],
                       help="asr: Whisper latency and word error rate; call: voice-to-voice "
                            "latency of real calls over loopback; health: GET /health latency "
                            "of a running daemon under concurrent clients; api: /health "
                            "latency and the cost of API model work to a live call (JSON in "
                            "bench-results/)")
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
