"""Load for `sipassist bench api`, run in its own process so it never shares the daemon's GIL.

`python -m sipassist.bench.api_load health URL CLIENTS INTERVAL` : CLIENTS concurrent clients,
each GET /health every INTERVAL seconds (a new connection each, as a monitoring probe does);
`python -m sipassist.bench.api_load models URL` : one client transcribing and one synthesising,
back to back ("full rate") while switched on by an "on" line on stdin ("off" pauses them).
Both run until stdin closes, then print one JSON line of results.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

SENTENCE = "Please remind me to water the plants and call the plumber this afternoon."


async def _health_client(host: str, port: int, latencies: list[float], errors: list[str],
                         stop: asyncio.Event, interval: float) -> None:
    request = f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    tick = time.perf_counter()
    while not stop.is_set():
        # One request every `interval` (a monitor polling): latency is then the server's, not
        # the queue that clients firing back to back would build themselves.
        tick += interval
        await asyncio.sleep(max(0.0, tick - time.perf_counter()))
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            await writer.drain()
            reply = await reader.read()
            writer.close()
            if not reply.startswith(b"HTTP/1.1 200") and not reply.startswith(b"HTTP/1.0 200"):
                errors.append(reply[:40].decode("latin-1"))
                continue
        except OSError as exc:
            errors.append(str(exc))
            continue
        latencies.append(time.perf_counter() - started)


async def _health(url: str, clients: int, interval: float) -> dict:
    parts = urlsplit(url)
    latencies: list[float] = []
    errors: list[str] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    tasks = []
    for n in range(clients):  # spread over the interval, as independent pollers are
        await asyncio.sleep(interval / clients)
        tasks.append(asyncio.create_task(_health_client(parts.hostname, parts.port, latencies,
                                                        errors, stop, interval)))
    started = time.perf_counter()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    stop.set()
    await asyncio.gather(*tasks)
    return {"latencies_ms": [round(v * 1000, 2) for v in latencies], "errors": errors[:20],
            "error_count": len(errors), "seconds": time.perf_counter() - started}


def _post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, body, {"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _models(url: str) -> dict:
    status, wav = _post(url + "/v1/tts/synthesize", json.dumps({"text": SENTENCE}).encode(),
                        "application/json")
    if status != 200:
        return {"error": f"TTS answered {status}: {wav[:200]!r}"}
    stop, active = threading.Event(), threading.Event()
    counts: dict[str, dict[str, int]] = {"asr": {}, "tts": {}}
    seconds: dict[str, float] = {"asr": 0.0, "tts": 0.0}

    def loop(kind: str, path: str, body: bytes, content_type: str) -> None:
        while not stop.is_set():
            if not active.wait(0.05):
                continue
            started = time.perf_counter()
            status, _ = _post(url + path, body, content_type)
            counts[kind][str(status)] = counts[kind].get(str(status), 0) + 1
            if status == 200:
                seconds[kind] += time.perf_counter() - started

    workers = [
        threading.Thread(target=loop, args=("asr", "/v1/asr/transcribe", wav, "audio/wav")),
        threading.Thread(target=loop, args=("tts", "/v1/tts/synthesize",
                                            json.dumps({"text": SENTENCE}).encode(),
                                            "application/json")),
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    print("ready", flush=True)
    for line in sys.stdin:  # "on" / "off" switch the load; end of input stops it
        (active.set if line.strip() == "on" else active.clear)()
    stop.set()
    for worker in workers:
        worker.join(180)
    return {"counts": counts, "busy_seconds": seconds, "seconds": time.perf_counter() - started}


def main(argv: list[str]) -> int:
    kind, url = argv[0], argv[1].rstrip("/")
    if kind == "health":
        result = asyncio.run(_health(url, int(argv[2]), float(argv[3])))
    else:
        result = _models(url)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
