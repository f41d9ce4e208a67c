"""sd_notify: READY, STATUS, STOPPING, and WATCHDOG pings that stop when the daemon is unwell.

A ping is sent only after a real health check passes (baresip answers a command over
ctrl_tcp, so a wedged reader stops the pings); systemd then restarts a daemon that hangs.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send to $NOTIFY_SOCKET; False when not under systemd (or without systemd-python)."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return False
    try:
        from systemd import daemon as systemd_daemon
    except ImportError:
        log.warning("NOTIFY_SOCKET is set but systemd-python is not installed")
        return False
    return bool(systemd_daemon.notify(message))


def watchdog_interval() -> float | None:
    """Half of WatchdogSec= (from $WATCHDOG_USEC), or None when systemd set no watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


class Watchdog:
    """Pings systemd while `check()` returns None; otherwise reports the problem as STATUS."""

    def __init__(self, check: Callable[[], str | None], status: Callable[[], str],
                 interval: float) -> None:
        self.check = check
        self.status = status
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="watchdog", daemon=True)
        self._last_problem: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.interval + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                problem = self.check()
            except Exception as exc:  # a failing check is a problem, not a crash
                problem = f"health check failed: {exc}"
            if problem is None:
                notify(f"WATCHDOG=1\nSTATUS={self.status()}")
                if self._last_problem:
                    log.info("healthy again")
            else:
                if problem != self._last_problem:
                    log.warning("unhealthy, not pinging the watchdog: %s", problem)
                notify(f"STATUS=Degraded: {problem}")
            self._last_problem = problem
