"""`sipassist bench recovery`: how long telephony takes to come back after kill -9 of jackd or
baresip, several times in a row.

A switchboard (jackd, the JACK bridge, baresip, ctrl_tcp; no models) is started in this process
on loopback, with private ports, JACK server name and directories, so it never touches a daemon
running on the box. Recovery is timed from the kill until the switchboard is ready and its
health check passes. Target: every recovery within 3 s.
"""

from __future__ import annotations

import json
import socket
import tempfile
import time
from pathlib import Path

from ..config import Settings, parse
from ..telephony.switchboard import Switchboard

TARGET_SECONDS = 3.0
BOUND_SECONDS = 120.0  # a recovery slower than this is reported as failed


def _free_block() -> int:
    """A base port with base, base+1 (SIP TLS) and base+5 (ctrl) free on loopback."""
    for base in range(47000, 60000, 100):
        try:
            for offset in (0, 1, 5):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as sock:
                        sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port block on loopback")


def _settings(work: Path) -> Settings:
    base = _free_block()
    return parse({
        "sip": {"listen": f"127.0.0.1:{base}", "interface": "127.0.0.1",
                "dns_server": "127.0.0.1:53", "ctrl_port": base + 5,
                "rtp_ports": f"{base + 10}-{base + 99}"},
        "audio": {"jack_server": f"sipassist-bench-{base}"},
        "paths": {"state_dir": str(work / "state"), "runtime_dir": str(work / "run")},
    })


def _recovery(board: Switchboard, kill) -> float | None:
    deadline = time.monotonic() + BOUND_SECONDS
    killed_at = time.monotonic()
    kill()
    while board.ready and time.monotonic() < deadline:  # until the loss is noticed
        time.sleep(0.01)
    while time.monotonic() < deadline:
        if board.wait_ready(0.05) and board.health_problem() is None:
            return time.monotonic() - killed_at
    return None


def run(jackd_kills: int = 5, baresip_kills: int = 3, json_path: Path | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="sipassist-bench-recovery-") as work:
        board = Switchboard(_settings(Path(work)))
        board.start()
        try:
            if not board.wait_ready(60):
                print("telephony did not come up")
                return 1
            rows = []
            for what, count in (("jackd", jackd_kills), ("baresip", baresip_kills)):
                for n in range(1, count + 1):
                    child = getattr(board, what)
                    seconds = _recovery(board, child.kill)
                    rows.append({"killed": what, "n": n,
                                 "recovery_s": None if seconds is None else round(seconds, 2)})
                    shown = "not back" if seconds is None else f"{seconds:.2f} s"
                    print(f"kill -9 {what} #{n}: healthy again after {shown}", flush=True)
        finally:
            board.stop()
    worst = max((r["recovery_s"] for r in rows if r["recovery_s"] is not None), default=None)
    failed = any(r["recovery_s"] is None for r in rows)
    ok = not failed and worst is not None and worst <= TARGET_SECONDS
    print(f"worst {worst} s; target {TARGET_SECONDS} s: {'met' if ok else 'MISSED'}")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"bench": "recovery", "target_s": TARGET_SECONDS,
                                         "worst_s": worst, "rows": rows}, indent=2) + "\n")
    return 0 if ok else 1
