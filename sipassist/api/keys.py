"""API keys: named, stored hashed in the state directory, shared by the CLI and the daemon.

A key is `sipa_<id>_<secret>`: the id finds the record, the secret is 32 random bytes. Only
HMAC-SHA256(salt, key) is stored, with a random salt per key, and compared in constant time.
A fast hash is right here: the keys are 256-bit random, so there is nothing to brute-force, and
scrypt would cost tens of milliseconds on every request.

The file (`api_keys.json`, mode 0600, owned like the state directory) is written atomically
under an flock, so `sipassist keys create` and `POST /v1/keys` may run at the same time; the
daemon re-reads it when it changes, so a key created or revoked by the CLI counts at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

KEYS_FILE = "api_keys.json"
PREFIX = "sipa"
NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-'"
# What a key may override of [api.limits].
LIMIT_NAMES = ("requests_per_minute", "requests_per_day", "tokens_per_minute",
               "tokens_per_day", "audio_seconds_per_hour", "audio_seconds_per_day")


class KeyProblem(ValueError):
    """A refused key operation; the message says why (a name taken, unknown, ...)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    key_id: str
    salt: str
    digest: str
    read_only: bool = False
    admin: bool = False
    created_at: str = ""
    revoked_at: str | None = None
    limits: dict[str, int] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def role(self) -> str:
        return "admin" if self.admin else "read-only" if self.read_only else "standard"

    def public(self) -> dict[str, Any]:
        """What GET /v1/keys and `keys list` show: never the secret or its hash."""
        return {"name": self.name, "role": self.role, "read_only": self.read_only,
                "admin": self.admin, "created_at": self.created_at,
                "revoked_at": self.revoked_at, "limits": dict(self.limits)}

    def matches(self, key: str) -> bool:
        return hmac.compare_digest(_digest(self.salt, key), self.digest)


def _digest(salt: str, key: str) -> str:
    return hmac.new(bytes.fromhex(salt), key.encode("latin-1", "replace"),
                    hashlib.sha256).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def check_limits(limits: dict[str, Any]) -> dict[str, int]:
    out = {}
    for name, value in limits.items():
        if name not in LIMIT_NAMES:
            raise KeyProblem(f"limits: unknown limit '{name}'; limits are {', '.join(LIMIT_NAMES)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise KeyProblem(f"limits.{name} must be a whole number, 0 or more (0 = no limit)")
        out[name] = value
    return out


class KeyStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / KEYS_FILE
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}  # by name

    # -- reading ----------------------------------------------------------------------------

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyProblem(f"{self.path}: cannot read the API keys ({exc.strerror})") from None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self) -> dict[str, ApiKey]:
        """The keys as on disk, re-read only when the file changed (one stat a call)."""
        with self._lock:
            stamp = self._stamp()
            if stamp != self._seen:
                self._keys = self._read()
                self._seen = stamp
            return self._keys

    def _read(self) -> dict[str, ApiKey]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KeyProblem(f"{self.path}: cannot read the API keys ({exc}); fix or remove "
                            "the file and create the keys again") from None
        return {k["name"]: ApiKey(**k) for k in data.get("keys", [])}

    def list(self) -> list[ApiKey]:
        return sorted(self._load().values(), key=lambda k: k.created_at)

    def any_active(self) -> bool:
        return any(k.active for k in self._load().values())

    def find(self, presented: str) -> ApiKey | None:
        """The key record `presented` belongs to (active or revoked), or None."""
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        key_id = parts[1].encode("latin-1", "replace")  # a header may hold any bytes
        for key in self._load().values():
            if hmac.compare_digest(key.key_id.encode(), key_id) and key.matches(presented):
                return key
        return None

    # -- writing ----------------------------------------------------------------------------

    def create(self, name: str, *, read_only: bool = False, admin: bool = False,
               limits: dict[str, Any] | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret (shown this once)."""
        if not NAME.fullmatch(name or ""):
            raise KeyProblem(f"key name {name!r}: use {NAME_RULE}")
        if read_only and admin:
            raise KeyProblem("a key is either read-only or admin, not both")
        limits = check_limits(limits or {})
        with self._edit() as keys:
            if name in keys and keys[name].active:
                raise KeyProblem(f"a key named '{name}' exists; revoke it first or pick "
                                "another name")
            key_id = secrets.token_hex(4)
            secret = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
            salt = secrets.token_hex(16)
            record = ApiKey(name=name, key_id=key_id, salt=salt, digest=_digest(salt, secret),
                            read_only=read_only, admin=admin, created_at=_now(), limits=limits)
            keys[name] = record
        return record, secret

    def revoke(self, name: str) -> ApiKey:
        with self._edit() as keys:
            key = keys.get(name)
            if key is None or not key.active:
                raise KeyProblem(f"no active key named '{name}'")
            keys[name] = revoked = ApiKey(**{**asdict(key), "revoked_at": _now()})
        return revoked

    def _edit(self):
        return _Edit(self)


class _Edit:
    """Read-modify-write of the key file under an exclusive flock; atomic replace."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self.keys: dict[str, ApiKey] = {}

    def __enter__(self) -> dict[str, ApiKey]:
        path = self.store.path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        _own_like_parent(Path(f"{path}.lock"))
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self.keys = self.store._read()
        return self.keys

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if kind is None:
                self._write()
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)

    def _write(self) -> None:
        path = self.store.path
        data = {"keys": [asdict(k) for k in self.keys.values()]}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            _own_like_parent(Path(tmp))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _own_like_parent(path: Path) -> None:
    """Root running `sipassist keys` writes files the daemon's user can still read."""
    if os.geteuid() != 0:
        return
    parent = path.parent.stat()
    os.chown(path, parent.st_uid, parent.st_gid)
