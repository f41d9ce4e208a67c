"""Command line: `sipassist run`, `check`, `models`, `keys`, `bench`."""

from __future__ import annotations

import argparse
import os
import sys
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
    from .bench.cli import add_parser as add_bench

    add_bench(commands)
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"sipassist: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
