"""`sipassist bench health`: GET /health latency under many concurrent clients.

Against a running daemon (`--url`, default the config's API port on loopback). Each of
`--clients` threads opens a new connection per request, as curl or a load balancer does, and
makes `--requests` requests one after another; all start together. Reports p50/p90/p99/max of
the request latency (connect included) and the failures, and writes JSON with --json.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..config import Settings


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def measure(url: str, clients: int, requests: int, timeout: float = 30.0) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    failures: dict[str, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client() -> None:
        mine, bad = [], {}
        start.wait()
        for _ in range(requests):
            began = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
                conn.request("GET", "/health")
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status != 200:
                    raise OSError(f"status {response.status}")
                mine.append(time.perf_counter() - began)
            except OSError as exc:
                name = type(exc).__name__ if not str(exc).startswith("status") else str(exc)
                bad[name] = bad.get(name, 0) + 1
        with lock:
            latencies.extend(mine)
            for name, count in bad.items():
                failures[name] = failures.get(name, 0) + count

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join(timeout * requests + 30)
    elapsed = time.perf_counter() - began
    ms = [value * 1000 for value in latencies]
    return {
        "url": url, "clients": clients, "requests_per_client": requests,
        "ok": len(ms), "failed": sum(failures.values()), "failures": failures,
        "seconds": round(elapsed, 2), "requests_per_second": round(len(ms) / elapsed, 1),
        "p50_ms": round(_percentile(ms, 0.50), 1) if ms else None,
        "p90_ms": round(_percentile(ms, 0.90), 1) if ms else None,
        "p99_ms": round(_percentile(ms, 0.99), 1) if ms else None,
        "max_ms": round(max(ms), 1) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
    }


def run(settings: Settings, url: str | None, clients: int, requests: int,
        json_path: Path | None) -> int:
    url = url or f"http://127.0.0.1:{settings.api.port}"
    result = measure(url, clients, requests)
    print(f"GET /health at {url}: {clients} concurrent clients x {requests} requests")
    print(f"{'ok':>6} {'failed':>6} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7}")
    print(f"{result['ok']:>6} {result['failed']:>6} {result['requests_per_second']:>7} "
          f"{result['p50_ms']!s:>7} {result['p90_ms']!s:>7} {result['p99_ms']!s:>7} "
          f"{result['max_ms']!s:>7}")
    if result["failures"]:
        print("failures:", ", ".join(f"{k} x{v}" for k, v in result["failures"].items()))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["ok"] else 1
