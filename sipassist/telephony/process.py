"""A child process kept alive: started, its output logged line by line, restarted when it dies.

The child dies with the daemon: it is started through `setpriv --pdeathsig TERM`, which sets
PR_SET_PDEATHSIG and then execs the real program. A wrapper rather than a `preexec_fn` because
the daemon has many threads, and Python code run between fork and exec in a threaded process
can deadlock (Python's documentation warns against it); setpriv is one small exec (util-linux is
part of every Debian). SIGTERM rather than SIGKILL lets baresip send its BYEs and jackd remove
its sockets. The signal follows the thread that forked the child: the supervisor thread, which
lives exactly as long as its child. A pid file in the runtime directory lets the next start find
and stop children an earlier run left behind all the same (an old version, a signal ignored).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                     "LISTEN_PID", "LISTEN_FDNAMES")
SETPRIV = shutil.which("setpriv")
MAX_LINE = 2000  # characters of one output line kept in the log
# baresip's call status, rewritten in place with carriage returns: "[0:00:01] audio=64000/..."
PROBLEM = re.compile(r"fail|error|already|cannot|can't|denied|not found|no such", re.I)
STATUS_LINE = re.compile(r"^\[\d+:\d\d:\d\d\] audio=")
# A line ends at CRLF, LF or a lone CR (the status line's); a CR last in a chunk waits for the
# next one, so a CRLF split across two reads is still one line end.
LINE_END = re.compile(rb"\r\n|\n|\r(?=[^\n])")


def cmdline_of(pid: int) -> list[str] | None:
    """The argv of process `pid` as /proc shows it; None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]] or None


def same_program(cmdline: list[str] | None, argv: Sequence[str]) -> bool:
    """Is `cmdline` the program of `argv` with the same values (config dir, server name)?

    Flags alone may differ: a leftover of an earlier version is ours all the same (baresip
    gained `-s` for the SIP trace)."""
    if not cmdline or Path(cmdline[0]).name != Path(argv[0]).name:
        return False
    values = [arg for arg in argv[1:] if not arg.startswith("-")]
    return [arg for arg in cmdline[1:] if not arg.startswith("-")] == values


def _wait_gone(pid: int, timeout: float) -> bool:
    """True once `pid` has exited (gone or a zombie), checking for up to `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


class SupervisedProcess:
    """Runs `argv` until stop(); an exit that was not asked for is logged and restarted.

    `on_started(pid)` runs after each start, `on_exited(returncode)` after each exit that was
    not asked for; both on the supervisor thread. A child that dies after its owner called
    `mark_healthy()` (or after `stable_after` s) is restarted at once; only a crash loop (exits
    before becoming healthy, in a row) waits, doubling from `backoff` up to `backoff_max`.
    `restart()` is a deliberate restart: never counted as a crash, never delayed.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        on_started: Callable[[int], None] | None = None,
        on_exited: Callable[[int], None] | None = None,
        pid_file: Path | None = None,
        restart_delay: float = 0.1,
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
        self.pid_file = pid_file
        self.restart_delay = restart_delay
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        # Sees each output line first and returns the part of it to log ("" for none).
        self.output_filter = output_filter
        self.restarts = 0  # exits that were not asked for
        self.last_exit: int | None = None
        self._last_words = ""  # the output lines of the run that ended last
        self.last_output: deque[str] = deque(maxlen=20)  # of the latest run
        self._proc: subprocess.Popen[bytes] | None = None
        self._healthy = False
        self._crashes = 0  # exits in a row before becoming healthy
        self._restart_requested = False
        self._stopping = threading.Event()
        self._wake = threading.Event()  # cuts a backoff wait short (stop, restart)
        self._thread: threading.Thread | None = None
        self._output_log = logging.getLogger(f"sipassist.{name}")

    @property
    def pid(self) -> int | None:
        """The running child's pid; None once it has died, even before it is reaped."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return None
        # poll() says "running" while the supervisor thread holds the wait lock: a killed
        # child is a zombie until that thread reaps it.
        return None if _wait_gone(proc.pid, 0) else proc.pid

    def exits_within(self, seconds: float) -> bool:
        """True if the child is dead or dies within `seconds` (a kill still under way)."""
        pid = self.pid
        return pid is None or _wait_gone(pid, seconds)

    def start(self) -> None:
        self.stop_leftovers()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._supervise, name=f"supervise-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._end_child(timeout)
        if self._thread:
            self._thread.join(timeout)
        self._remove_pid_file()

    def restart(self, timeout: float = 5.0) -> None:
        """Stop the child and start it again at once (not a crash: no backoff)."""
        self._restart_requested = True
        self._wake.set()
        self._end_child(timeout)

    def mark_healthy(self) -> None:
        """The owner found the child working: a later exit is no crash loop."""
        self._healthy = True
        self._crashes = 0

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal to the running child (used to test recovery)."""
        pid = self.pid
        if pid:
            os.kill(pid, sig)

    def failure(self) -> str:
        """What the latest exit said: its code and last output lines."""
        return f"{self.name} exited with code {self.last_exit}: {self._last_words or 'no output'}"

    # -- leftovers of an earlier run -------------------------------------------------------

    def stop_leftovers(self) -> None:
        """Stop the child an earlier run of this config left running (daemon SIGKILLed)."""
        if self.pid_file is None:
            return
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        # The pid may have been reused since: only our own program with our own arguments.
        if pid != os.getpid() and same_program(cmdline_of(pid), self.argv):
            log.warning("%s (pid %d) was left running by an earlier run of this config; "
                        "stopping it", self.name, pid)
            try:
                os.kill(pid, signal.SIGTERM)
                if not _wait_gone(pid, 3.0):
                    log.warning("%s (pid %d) ignored SIGTERM; killing it", self.name, pid)
                    os.kill(pid, signal.SIGKILL)
                    _wait_gone(pid, 3.0)
            except ProcessLookupError:
                pass
            except PermissionError:
                log.error("cannot stop %s (pid %d): it belongs to another user", self.name, pid)
        self._remove_pid_file()

    def _write_pid_file(self, pid: int) -> None:
        if self.pid_file is None:
            return
        try:
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            temp = self.pid_file.with_name(self.pid_file.name + ".tmp")
            temp.write_text(f"{pid}\n")
            os.replace(temp, self.pid_file)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.pid_file, exc)

    def _remove_pid_file(self) -> None:
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    # -- the supervisor thread -------------------------------------------------------------

    def _end_child(self, timeout: float) -> None:
        proc = self._proc
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %g s; killing it", self.name, timeout)
                proc.kill()
                proc.wait()

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = self.argv
        if SETPRIV:
            argv = [SETPRIV, "--pdeathsig", "TERM", "--", *argv]
        # restore_signals=False: the child keeps Python's SIGPIPE ignored. When the daemon is
        # killed, its end of the output pipe goes; baresip, told to stop by the death signal,
        # may flush its buffered output before its BYE is out, and SIGPIPE would kill it there
        # (the far phone then keeps a dead call: seen once in a loaded full run).
        return subprocess.Popen(
            argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            restore_signals=False,
        )

    def _supervise(self) -> None:
        if not SETPRIV:
            log.warning("setpriv (util-linux) is missing: %s will outlive a killed daemon",
                        self.name)
        while not self._stopping.is_set():
            started = time.monotonic()
            self._healthy = False
            self._restart_requested = False
            self._wake.clear()
            self.last_output.clear()
            try:
                self._proc = self._spawn()
            except OSError as exc:
                log.error("cannot start %s (%s): %s", self.name, self.argv[0], exc)
                returncode = -1
                self.last_output.append(str(exc))
            else:
                log.info("%s started (pid %d)", self.name, self._proc.pid)
                self._write_pid_file(self._proc.pid)
                if self.on_started:
                    self._call(self.on_started, self._proc.pid)
                self._pump_output(self._proc)
                returncode = self._proc.wait()
            # The lines that say what went wrong (jackd prints its banner after its error).
            said = [line for line in self.last_output if PROBLEM.search(line)]
            self._last_words = " | ".join(said or list(self.last_output)[-3:])
            self.last_exit = returncode
            if self._stopping.is_set():
                log.info("%s stopped", self.name)
                return
            if self._restart_requested:
                log.info("%s restarted on request", self.name)
                continue
            if self._healthy or time.monotonic() - started > self.stable_after:
                self._crashes = 0
                delay = self.restart_delay
                log.error("%s exited with code %s; restarting in %.1f s", self.name,
                          returncode, delay)
            else:  # died before it ever worked: a crash loop, back off; say why at ERROR
                self._crashes += 1
                delay = min(self.backoff * 2 ** (self._crashes - 1), self.backoff_max)
                log.error("%s; restarting in %.1f s", self.failure(), delay)
            self.restarts += 1
            if self.on_exited:
                self._call(self.on_exited, returncode)
            self._wake.wait(delay)

    def _pump_output(self, proc: subprocess.Popen[bytes]) -> None:
        """Log the child's output a line at a time; carriage returns end a line too."""
        assert proc.stdout is not None
        pending = b""
        while True:
            chunk = proc.stdout.read1(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = LINE_END.split(pending)
            if len(pending) > MAX_LINE:  # no line end in sight: log what there is
                lines.append(pending)
                pending = b""
            for raw in lines:
                self._log_line(raw)
        self._log_line(pending)

    def _log_line(self, raw: bytes) -> None:
        line = raw.decode(errors="replace")
        if self.output_filter:  # sees every line, blank ones too (they end SIP headers)
            line = self._filtered(line)
        line = line.strip()
        if not line or STATUS_LINE.match(line):  # a call's running status: no news
            return
        if len(line) > MAX_LINE:
            line = line[:MAX_LINE] + "…"
        self.last_output.append(line)
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
