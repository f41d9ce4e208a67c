"""A small tmpfs for storage-fault tests: made read-only, filled up, then made usable again."""

from __future__ import annotations

import errno
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


class SmallDisk:
    """A tmpfs of `size` mounted on `path`; this test's own, unmounted at teardown."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fill = path / "filler"

    def _mount(self, *options: str) -> None:
        for attempt in range(20):  # "busy" while a write is in progress: bounded retries
            done = subprocess.run(["mount", *options, str(self.path)], capture_output=True,
                                  text=True, timeout=10)
            if done.returncode == 0:
                return
            threading.Event().wait(0.1)
        raise AssertionError(f"mount {' '.join(options)} failed: {done.stderr.strip()}")

    def read_only(self) -> None:
        self._mount("-o", "remount,ro")

    def writable(self) -> None:
        self._mount("-o", "remount,rw")

    def fill(self) -> None:
        """Take every free block (and leave no room for a new file)."""
        fd = os.open(self._fill, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (65536, 4096, 1):  # then the last partial page
                for _ in range(100_000):  # bounded: far more than any test disk holds
                    try:
                        os.write(fd, b"\0" * size)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)

    def free(self) -> None:
        self._fill.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 4 MB tmpfs; skipped where mounting is not permitted (not root, no CAP_SYS_ADMIN)."""
    path = tmp_path / "disk"
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN); run the suite as root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs",
                           str(path)], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)
