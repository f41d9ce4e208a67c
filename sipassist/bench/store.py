"""`sipassist bench store`: POST /call latency with a long call history.

For each history size, a fresh state directory gets that many ended calls in the layout of a
daemon before the history file existed (every call in `calls.json`), so the first start also
measures the one-time move to `calls-history.jsonl`. Then the real API (the daemon's
routes, gate and server, on loopback) takes `--posts` POST /call requests one after another;
the queue's worker never dials (telephony is "not ready"), so each request is the API's work and the disk write.
GET /calls and GET /call/{id} of an old call are timed too. Files are fsynced as in the daemon,
on the filesystem of --dir (default: a temporary directory).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from ..api import calls as calls_api
from ..api.app import empty_api
from ..api.gate import Gate
from ..api.keys import KeyStore
from ..api.server import ApiServer
from ..api.services import Services
from ..calls.history import CallHistory
from ..calls.live import LiveCalls
from ..calls.model import COMPLETED, CallRecord
from ..calls.placing import CallPlacer
from ..calls.queue import TABLE, CallQueue
from ..config import Settings

SIZES = (20_000, 100_000)
NEVER = threading.Event()  # telephony never becomes ready: the queue's workers just wait


def _old_calls_json(path: Path, count: int) -> None:
    """`count` ended calls, one a minute back from now, as tinydb wrote them before."""
    now = datetime.now(timezone.utc)
    docs = {}
    for n in range(1, count + 1):
        at = (now - timedelta(minutes=count - n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        docs[str(n)] = CallRecord(
            call_id=f"past-{n}", extension="1001", dial_uri="sip:1001@192.168.1.20",
            message="Hello! This is a reminder about your appointment tomorrow at 2pm.",
            seq=n, status=COMPLETED, queued_at=at, started_at=at, completed_at=at,
            message_played=True).to_document()
    path.write_text(json.dumps({TABLE: docs}), encoding="utf-8")


def _timed(method: str, url: str, body: dict | None = None) -> tuple[float, int]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        status = response.status
    return (time.perf_counter() - started) * 1000, status


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
            "max_ms": round(ordered[-1], 2), "mean_ms": round(statistics.fmean(ordered), 2)}


def measure(settings: Settings, directory: Path, count: int, posts: int) -> dict[str, Any]:
    state = directory / f"state-{count}"
    state.mkdir(parents=True)
    _old_calls_json(state / "calls.json", count)
    settings = replace(settings, paths=replace(settings.paths, state_dir=state),
                       queue=replace(settings.queue, max_pending=posts + 1),
                       calls=replace(settings.calls, keep_max=count + posts, keep_days=3650))
    started = time.perf_counter()
    live = LiveCalls(settings.calls_live)
    history = CallHistory(settings.calls_history, settings.calls.keep_days,
                          settings.calls.keep_max)
    queue = CallQueue(live, settings.queue, runner=None, can_dial=NEVER.wait,
                      on_finished=lambda record: None, history=history,
                      legacy_db=settings.calls_db)
    queue.start()
    first_start_ms = (time.perf_counter() - started) * 1000
    placer = CallPlacer(queue, settings)
    api = empty_api(settings)
    calls_api.install(api, Services(settings=settings, switchboard=None, queue=queue,
                                    placer=placer, active=None, speak=None, tools=None,
                                    schedules=None))
    # The daemon's gate and server, without a request limit (the bench is one busy client).
    api_settings = replace(settings.api, limits=replace(settings.api.limits,
                                                        requests_per_minute=0))
    gate = Gate(api, api_settings, KeyStore(settings.paths.state_dir))
    server = ApiServer(gate, "127.0.0.1", 0, api_settings, gate.screen)
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        _timed("GET", url + "/calls?limit=1")  # warm-up: the first request imports and compiles
        post = [_timed("POST", url + "/call", {"message": f"Bench call {n}.",
                                              "extension": "sip:1001@192.168.1.20"})[0]
                for n in range(posts)]
        listing = [_timed("GET", url + "/calls?limit=50")[0] for _ in range(10)]
        one = [_timed("GET", url + f"/call/past-{max(1, count // 2)}")[0] for _ in range(10)]
        total = queue.status()["total_processed"]
    finally:
        server.stop()
        queue.stop(1)
        live.close()
        history.close()
    started = time.perf_counter()  # a later start: the history is read and indexed
    live, history = LiveCalls(settings.calls_live), CallHistory(
        settings.calls_history, settings.calls.keep_days, settings.calls.keep_max)
    again = CallQueue(live, settings.queue, runner=None, can_dial=NEVER.wait,
                      on_finished=lambda record: None, history=history)
    again.start()
    start_ms = (time.perf_counter() - started) * 1000
    again.stop(1)
    live.close()
    history.close()
    files = {p.name: p.stat().st_size for p in sorted(state.iterdir()) if p.is_file()}
    return {"history": count, "posts": posts, "first_start_ms": round(first_start_ms, 1),
            "start_ms": round(start_ms, 1),
            "post_call": _stats(post), "get_calls_50": _stats(listing),
            "get_old_call": _stats(one), "total_processed": total, "files_bytes": files}


def run(settings: Settings, sizes: tuple[int, ...] = SIZES, posts: int = 50,
        directory: Path | None = None, json_path: Path | None = None,
        out: TextIO = sys.stdout) -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="sipassist-bench-store-",
                                     dir=directory) as work:
        for count in sizes:
            row = measure(settings, Path(work), count, posts)
            rows.append(row)
            post = row["post_call"]
            print(f"{count:>7} past calls: first start (moving calls.json) "
                  f"{row['first_start_ms']:.0f} ms, later start {row['start_ms']:.0f} ms; "
                  f"POST /call p50 "
                  f"{post['p50_ms']:.1f} ms, p90 {post['p90_ms']:.1f} ms, max "
                  f"{post['max_ms']:.1f} ms; GET /calls?limit=50 p50 "
                  f"{row['get_calls_50']['p50_ms']:.1f} ms; GET /call/<old> p50 "
                  f"{row['get_old_call']['p50_ms']:.1f} ms", file=out)
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"rows": rows}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}", file=out)
    return 0
