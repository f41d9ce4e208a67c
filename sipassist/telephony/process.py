"""A child process kept alive: started, its output logged line by line, restarted with backoff."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger(__name__)

SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                     "LISTEN_PID", "LISTEN_FDNAMES")


class SupervisedProcess:
    """Runs `argv` until stop(); an exit that was not asked for is logged and restarted.

    `on_started(pid)` runs after each start, `on_exited(returncode)` after each unexpected exit;
    both on the supervisor thread. Backoff doubles from `backoff` up to `backoff_max` and resets
    once the child has stayed up for `stable_after` seconds.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        on_started: Callable[[int], None] | None = None,
        on_exited: Callable[[int], None] | None = None,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        stable_after: float = 60.0,
        output_filter: Callable[[str], str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        # Children must not speak to systemd for us (jackd would send its own READY=1).
        inherited = {k: v for k, v in os.environ.items() if k not in SYSTEMD_VARIABLES}
        self.env = {**inherited, **(env or {})}
        self.cwd = cwd
        self.on_started = on_started
        self.on_exited = on_exited
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        # Sees each output line first and returns the part of it to log ("" for none).
        self.output_filter = output_filter
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._output_log = logging.getLogger(f"sipassist.{name}")

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc and proc.poll() is None else None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._supervise, name=f"supervise-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        proc = self._proc
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %g s; killing it", self.name, timeout)
                proc.kill()
                proc.wait()
        if self._thread:
            self._thread.join(timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal to the running child (used to test recovery)."""
        pid = self.pid
        if pid:
            os.kill(pid, sig)

    def _supervise(self) -> None:
        delay = self.backoff
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._proc = subprocess.Popen(
                    self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                )
            except OSError as exc:
                log.error("cannot start %s (%s): %s", self.name, self.argv[0], exc)
                returncode = -1
            else:
                log.info("%s started (pid %d)", self.name, self._proc.pid)
                if self.on_started:
                    self._call(self.on_started, self._proc.pid)
                self._pump_output(self._proc)
                returncode = self._proc.wait()
            if self._stopping.is_set():
                log.info("%s stopped", self.name)
                return
            if time.monotonic() - started > self.stable_after:
                delay = self.backoff
            log.error("%s exited with code %s; restarting in %.1f s", self.name, returncode, delay)
            self.restarts += 1
            if self.on_exited:
                self._call(self.on_exited, returncode)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self.backoff_max)

    def _pump_output(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if self.output_filter:
                line = self._filtered(line)
            if line:
                self._output_log.info("%s", line)

    def _filtered(self, line: str) -> str:
        try:
            return self.output_filter(line)
        except Exception:  # a filter bug must not stop the output being read
            log.exception("%s output filter failed", self.name)
            return line

    def _call(self, callback: Callable[[int], None], value: int) -> None:
        try:
            callback(value)
        except Exception:
            log.exception("%s supervisor callback failed", self.name)
