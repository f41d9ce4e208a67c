"""Storage faults: which state files cannot be written, why, the fix, and retrying until it works.

A write that fails (read-only or full filesystem, out of file descriptors) is reported here. The
problem shows in `GET /health` and the journal until a write to that file succeeds again, and a
background thread probes the directory and re-runs the pending writes (retry callbacks) every
few seconds, so work resumes by itself once the disk is usable again.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0


class StorageError(RuntimeError):
    """A state file could not be read or written; the message says why and how to fix it."""


def describe(path: Path, exc: OSError) -> str:
    """One sentence for the journal, /health and an API 503: what failed and the fix."""
    directory = path.parent
    reason = exc.strerror or str(exc)
    code = exc.errno
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"state directory {directory} is not writable ({reason}). Fix: remount it "
                f"read-write or give the sipassist user write access to it; work resumes "
                f"by itself")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return (f"state directory {directory} is full ({reason}). Fix: free space on its "
                f"filesystem (df -h {directory}); work resumes by itself")
    if code in (errno.EMFILE, errno.ENFILE):
        return (f"out of file descriptors writing {path} ({reason}). Fix: close idle "
                f"connections to the API or raise LimitNOFILE; work resumes by itself")
    if code == errno.EIO:
        return (f"I/O error on {path} ({reason}). Fix: the storage may be failing; check "
                f"the kernel log (dmesg) and the SD card")
    return f"cannot write {path} ({reason}). Fix: check the state directory {directory}"


class StorageFaults:
    """The current storage problems, one per file, and the retry loop that clears them."""

    def __init__(self, retry_seconds: float = RETRY_SECONDS) -> None:
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._problems: dict[Path, str] = {}
        self._retries: list[Callable[[], None]] = []
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- reporting ----------------------------------------------------------------------------

    def failed(self, path: Path, exc: OSError) -> StorageError:
        """Record that `path` could not be written; returns the error to raise."""
        message = describe(Path(path), exc)
        with self._lock:
            new = self._problems.get(Path(path)) != message
            self._problems[Path(path)] = message
            self._wake.notify_all()
        if new:
            log.error("%s (%s)", message, type(exc).__name__)
        return StorageError(message)

    def cleared(self, path: Path) -> None:
        """A write to `path` succeeded."""
        with self._lock:
            if not self._problems:  # the usual case: nothing to do, no allocation
                return
            old = self._problems.pop(Path(path), None)
        if old is not None:
            log.warning("%s can be written again; resuming", path)

    def problems(self) -> list[str]:
        with self._lock:
            return sorted(set(self._problems.values()))

    # -- retrying -----------------------------------------------------------------------------

    def on_retry(self, retry: Callable[[], None]) -> None:
        """Call `retry` every few seconds: it writes what is pending, if anything."""
        with self._lock:
            self._retries.append(retry)

    def start(self) -> None:
        with self._lock:
            self._stopping = False
        self._thread = threading.Thread(target=self._run, name="storage-retry", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def retry_now(self) -> None:
        """Probe each failing directory and run the pending writes (the thread does this)."""
        with self._lock:
            paths = list(self._problems)
            retries = list(self._retries)
        for path in paths:
            if _probe(path.parent):
                # Writable again for the probe: let the real writes say whether it holds.
                self.cleared(path)
        for retry in retries:
            try:
                retry()
            except Exception:
                log.exception("retrying pending state writes failed")

    def _run(self) -> None:
        while True:
            # Every few seconds even without a problem: a write may be pending for a file
            # whose problem a later write cleared. A retry with nothing pending costs nothing.
            with self._lock:
                self._wake.wait(self.retry_seconds)
                if self._stopping:
                    return
            self.retry_now()


def _probe(directory: Path) -> bool:
    """True if a small file can be created, written, synced and removed in `directory`."""
    probe = directory / f".write-probe-{os.getpid()}-{threading.get_ident()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"probe\n" * 700)  # a few KB: a full disk refuses that
            os.fsync(fd)
        finally:
            os.close(fd)
        return True
    except OSError:
        return False
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
