"""`sipassist keys create|list|revoke NAME`: the API keys in the state directory."""

from __future__ import annotations

import argparse
import sys

from .api.keys import KeyProblem, KeyStore
from .config import Settings

# Seed 000's abbreviations -> [api.limits] names.
LIMIT_OPTIONS = {
    "rpm": "requests_per_minute", "rpd": "requests_per_day",
    "tpm": "tokens_per_minute", "tpd": "tokens_per_day",
    "ash": "audio_seconds_per_hour", "asd": "audio_seconds_per_day",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["create", "list", "revoke"])
    parser.add_argument("name", nargs="?", help="the key's name (create, revoke)")
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--read-only", action="store_true", help="GET requests only")
    role.add_argument("--admin", action="store_true", help="may also manage keys")
    for short, name in LIMIT_OPTIONS.items():
        parser.add_argument(f"--{short}", type=int, metavar="N", dest=name,
                            help=f"{name.replace('_', ' ')} for this key (0 = no limit; "
                                 "default [api.limits])")


def run(settings: Settings, args: argparse.Namespace) -> int:
    store = KeyStore(settings.paths.state_dir)
    try:
        if args.action == "list":
            return _list(store)
        if not args.name:
            print(f"sipassist keys {args.action}: give the key's name", file=sys.stderr)
            return 2
        if args.action == "revoke":
            store.revoke(args.name)
            print(f"revoked API key '{args.name}'")
            return 0
        limits = {name: getattr(args, name) for name in LIMIT_OPTIONS.values()
                  if getattr(args, name) is not None}
        key, secret = store.create(args.name, read_only=args.read_only, admin=args.admin,
                                   limits=limits)
    except KeyProblem as exc:
        print(f"sipassist keys: {exc}", file=sys.stderr)
        return 1
    except PermissionError as exc:
        print(f"sipassist keys: {exc.filename}: permission denied; run it as root or as the "
              "sipassist user", file=sys.stderr)
        return 1
    print(f"created {key.role} API key '{key.name}'; it is shown only this once:")
    print(secret)
    print("Send it as the header 'api-key: <key>' or 'Authorization: Bearer <key>'.")
    if settings.api.host not in ("127.0.0.1", "::1", "localhost") and not settings.api.token \
            and len([k for k in store.list() if k.active]) == 1:
        print(f"The first key: restart the daemon (systemctl restart sipassist) for the API "
              f"to listen on {settings.api.host} instead of 127.0.0.1 only.")
    return 0


def _list(store: KeyStore) -> int:
    keys = store.list()
    if not keys:
        print("no API keys; create one with: sipassist keys create NAME")
        return 0
    print(f"{'NAME':<24} {'ROLE':<10} {'CREATED':<21} {'STATE':<30} LIMITS")
    for key in keys:
        state = "active" if key.active else f"revoked {key.revoked_at}"
        limits = ", ".join(f"{k}={v}" for k, v in key.limits.items()) or "[api.limits]"
        print(f"{key.name:<24} {key.role:<10} {key.created_at:<21} {state:<30} {limits}")
    return 0
