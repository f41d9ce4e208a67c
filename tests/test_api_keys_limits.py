"""Keys, rate-limit windows, the failure log and secure-by-default, without a daemon."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sipassist import config
from sipassist.api.gate import FailureLog, listen_host
from sipassist.api.keys import KeyProblem, KeyStore
from sipassist.api.limits import RateLimiter
from sipassist.config import ApiSettings, LimitSettings


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- keys ------------------------------------------------------------------------------------

def test_keys_are_stored_hashed_and_found(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    record, secret = store.create("door", read_only=True, limits={"requests_per_minute": 5})
    text = (tmp_path / "api_keys.json").read_text()
    random_part = secret.split("_", 2)[2]  # itself may hold "_"
    assert secret not in text and random_part not in text
    assert (tmp_path / "api_keys.json").stat().st_mode & 0o077 == 0
    assert store.find(secret) == record and record.role == "read-only"
    assert store.find(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert store.find("nonsense") is None and store.find("sipa_x_y") is None
    assert store.find("sipa_\u00e9t\u00e9_\u00fc") is None  # header bytes beyond ASCII
    # Another store on the same file (the daemon, while the CLI wrote) sees the change.
    other = KeyStore(tmp_path)
    assert other.find(secret) is not None
    store.revoke("door")
    assert not other.find(secret).active and not other.any_active()


@pytest.mark.parametrize(("name", "options", "words"), [
    ("a b", {}, ["key name"]), ("", {}, ["key name"]), ("x" * 65, {}, ["key name"]),
    ("ok", {"read_only": True, "admin": True}, ["read-only or admin"]),
    ("ok", {"limits": {"requests_per_hour": 1}}, ["requests_per_hour"]),
    ("ok", {"limits": {"requests_per_minute": -1}}, ["requests_per_minute"]),
])
def test_bad_keys_are_refused(tmp_path: Path, name: str, options: dict, words: list) -> None:
    with pytest.raises(KeyProblem) as problem:
        KeyStore(tmp_path).create(name, **options)
    for word in words:
        assert word in str(problem.value)


def test_a_name_is_taken_until_revoked(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    _, first = store.create("twice")
    with pytest.raises(KeyProblem, match="exists"):
        store.create("twice")
    store.revoke("twice")
    _, second = store.create("twice")
    assert store.find(second).active and store.find(first) is None
    with pytest.raises(KeyProblem, match="no active key"):
        store.revoke("never")


# -- rate limits -----------------------------------------------------------------------------

def test_request_windows() -> None:
    clock = Clock(1_800_057_600.0)  # the start of a UTC day (and so of a minute)
    limiter = RateLimiter(clock)
    limits = LimitSettings(requests_per_minute=3, requests_per_day=5)
    seen = [limiter.hit("a", limits) for _ in range(3)]
    assert [v.remaining for v in seen] == [2, 1, 0] and all(v.allowed for v in seen)
    refused = limiter.hit("a", limits)
    assert not refused.allowed and refused.retry_after == 60
    assert refused.reset == 1_800_057_660
    assert limiter.hit("b", limits).allowed  # per client
    clock.now += 60  # a new minute, same day: 2 left for today
    assert [limiter.hit("a", limits).allowed for _ in range(3)] == [True, True, False]
    day = limiter.hit("a", limits)
    assert day.window == "requests_per_day" and day.retry_after == 86400 - 60


def test_charged_budgets() -> None:
    clock = Clock(1_800_000_030.0)
    limiter = RateLimiter(clock)
    limits = LimitSettings(tokens_per_minute=100, audio_seconds_per_hour=10)
    assert limiter.peek("a", limits, "tokens").allowed
    limiter.charge("a", limits, "tokens", 150)  # past the limit: the next one is refused
    assert not limiter.peek("a", limits, "tokens").allowed
    assert limiter.peek("a", limits, "audio").allowed
    limiter.charge("a", limits, "audio", 9.5)
    assert limiter.peek("a", limits, "audio").remaining == 0
    clock.now += 30
    assert limiter.peek("a", limits, "tokens").allowed  # a new minute
    assert limiter.peek("a", limits, "audio").allowed  # 9.5 of 10 in this hour


def test_zero_means_no_limit() -> None:
    limiter = RateLimiter(Clock(1_800_000_000.0))
    limits = LimitSettings(requests_per_minute=0, requests_per_day=0)
    assert all(limiter.hit("a", limits).allowed for _ in range(1000))


# -- failures logged once a minute -----------------------------------------------------------

def test_failures_are_logged_once_a_minute_with_a_count(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sipassist.api.gate")
    clock = Clock(100.0)
    failures = FailureLog(clock=clock)
    for _ in range(4000):
        failures.note("10.0.0.9", "wrong API token (GET /queue)")
    failures.note("10.0.0.7", "API token required (GET /queue)")
    assert len(caplog.records) == 2
    clock.now += 61
    failures.note("10.0.0.9", "wrong API token (GET /queue)")
    assert len(caplog.records) == 3
    assert "4000 requests" in caplog.records[-1].getMessage()
    assert "10.0.0.9" in caplog.records[-1].getMessage()


# -- secure by default -----------------------------------------------------------------------

def test_no_key_means_loopback_only(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    host, warning = listen_host(ApiSettings(host="0.0.0.0"), store)
    assert host == "127.0.0.1" and "127.0.0.1 only" in warning and "keys create" in warning
    assert listen_host(ApiSettings(host="127.0.0.1"), store) == ("127.0.0.1", None)
    assert listen_host(ApiSettings(host="0.0.0.0", token="t" * 20), store) == ("0.0.0.0", None)
    store.create("first")
    assert listen_host(ApiSettings(host="0.0.0.0"), store) == ("0.0.0.0", None)


def test_check_says_so(tmp_path: Path) -> None:
    from sipassist.check import Checker

    path = tmp_path / "sipassist.toml"
    path.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n')
    checker = Checker(path)
    results = []
    checker._emit = results.append
    checker.settings = config.load(path)
    checker.check_api_keys()
    assert results[-1].status == "WARN" and "127.0.0.1 only" in results[-1].detail
    KeyStore(tmp_path / "state").create("lan")
    checker.check_api_keys()
    assert results[-1].status == "OK" and "0.0.0.0:8080" in results[-1].detail


# -- config ----------------------------------------------------------------------------------

def test_api_limits_table() -> None:
    settings = config.parse({"api": {"limits": {"requests_per_minute": 7}, "threads": 4}})
    assert settings.api.limits.requests_per_minute == 7 and settings.api.threads == 4
    assert config.parse({}).api.limits.requests_per_minute == 100  # seed 002's default
    for bad, words in (({"limits": {"requests_per_minute": -1}}, "api.limits.requests_per_minute"),
                       ({"limits": {"rpm": 1}}, "api.limits.rpm"),
                       ({"limits": 5}, "api.limits"), ({"backlog": 5}, "api.backlog")):
        with pytest.raises(config.ConfigError, match=words.replace(".", r"\.")):
            config.parse({"api": bad})
