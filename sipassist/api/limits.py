"""Rate limits per client (a key, or an address where no key is needed), in memory.

Fixed windows aligned to the clock (minute, hour, UTC day): each request costs one in every
request window; LLM tokens and audio seconds are charged by the endpoints that spend them:

    from sipassist.api.limits import charge
    charge(tokens=usage.input_tokens + usage.output_tokens)   # after an LLM answer
    charge(audio_seconds=duration)                           # after ASR or TTS

A route declared with `budget=("tokens",)` or `("audio",)` is refused with 429 before it runs
once that budget is spent. One lock guards the counters; each check is O(windows).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import bottle

from ..config import LimitSettings

# meter -> its windows: (the LimitSettings field, window length in seconds)
METERS: dict[str, tuple[tuple[str, int], ...]] = {
    "requests": (("requests_per_minute", 60), ("requests_per_day", 86400)),
    "tokens": (("tokens_per_minute", 60), ("tokens_per_day", 86400)),
    "audio": (("audio_seconds_per_hour", 3600), ("audio_seconds_per_day", 86400)),
}
WORDS = {"requests": "requests", "tokens": "LLM tokens", "audio": "audio seconds"}
MAX_CLIENTS = 10_000  # counters kept; expired ones are dropped first
ENVIRON_KEY = "sipassist.meter"


@dataclass(frozen=True)
class Verdict:
    """The state of the tightest window: what the X-RateLimit-* headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds
    retry_after: int = 0
    window: str = ""  # the LimitSettings field that decided

    def headers(self) -> list[tuple[str, str]]:
        out = [("X-RateLimit-Limit", str(self.limit)),
               ("X-RateLimit-Remaining", str(self.remaining)),
               ("X-RateLimit-Reset", str(self.reset))]
        if not self.allowed:
            out.append(("Retry-After", str(self.retry_after)))
        return out


UNLIMITED = Verdict(True, 0, 0, 0)


class RateLimiter:
    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # client -> field -> (window start, amount used)
        self._used: dict[str, dict[str, tuple[int, float]]] = {}

    def hit(self, client: str, limits: LimitSettings) -> Verdict:
        """Count one request, unless a request window is used up (then allowed=False)."""
        return self._apply(client, limits, "requests", 1.0, refuse=True)

    def peek(self, client: str, limits: LimitSettings, meter: str = "requests") -> Verdict:
        """The state without charging anything (allowed=False if a window is used up)."""
        return self._apply(client, limits, meter, 0.0, refuse=True)

    def charge(self, client: str, limits: LimitSettings, meter: str, amount: float) -> None:
        """Count work already done; it may go past the limit (the next request is refused)."""
        if amount > 0:
            self._apply(client, limits, meter, float(amount), refuse=False)

    def _apply(self, client: str, limits: LimitSettings, meter: str, amount: float,
               refuse: bool) -> Verdict:
        now = self._clock()
        windows = [(name, length, getattr(limits, name)) for name, length in METERS[meter]
                   if getattr(limits, name) > 0]
        if not windows:
            return UNLIMITED
        with self._lock:
            used = self._used.get(client)
            if used is None:
                if len(self._used) >= MAX_CLIENTS:
                    self._prune(now)
                used = self._used[client] = {}
            # (field, limit, spent in the current window, its start, its end)
            states = []
            for name, length, limit in windows:
                start = int(now // length) * length
                began, spent = used.get(name, (start, 0.0))
                states.append((name, limit, spent if began == start else 0.0, start,
                               start + length))
            full = [state for state in states if state[2] >= state[1]]
            if refuse and full:  # wait for the last of the full windows to end
                name, limit, _, _, reset = max(full, key=lambda state: state[4])
                return Verdict(False, limit, 0, reset, max(1, math.ceil(reset - now)), name)
            for name, _, spent, start, _ in states:
                used[name] = (start, spent + amount)
            name, limit, spent, _, reset = min(states, key=lambda state: state[1] - state[2])
            return Verdict(True, limit, max(0, int(limit - spent - amount)), reset, 0, name)

    def _prune(self, now: float) -> None:
        day = int(now // 86400) * 86400
        for client in [c for c, used in self._used.items()
                       if all(began < day for began, _ in used.values())]:
            del self._used[client]
        if len(self._used) >= MAX_CLIENTS:  # still full: forget the oldest half
            for client in list(self._used)[: MAX_CLIENTS // 2]:
                del self._used[client]


@dataclass(frozen=True)
class Meter:
    """One request's client, to charge its budgets (usable from a streaming generator too)."""

    limiter: RateLimiter
    client: str
    limits: LimitSettings

    def charge(self, *, tokens: int = 0, audio_seconds: float = 0.0) -> None:
        self.limiter.charge(self.client, self.limits, "tokens", tokens)
        self.limiter.charge(self.client, self.limits, "audio", audio_seconds)

    def spent(self, meter: str) -> Verdict:
        return self.limiter.peek(self.client, self.limits, meter)


def meter(environ: dict[str, Any] | None = None) -> Meter | None:
    """The current request's meter (None outside the gate, e.g. a bare app in a test)."""
    environ = bottle.request.environ if environ is None else environ
    return environ.get(ENVIRON_KEY)


def charge(*, tokens: int = 0, audio_seconds: float = 0.0,
           environ: dict[str, Any] | None = None) -> None:
    """Charge the current request's client for LLM tokens or audio seconds it used."""
    current = meter(environ)
    if current is not None:
        current.charge(tokens=tokens, audio_seconds=audio_seconds)
