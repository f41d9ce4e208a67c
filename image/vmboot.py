#!/usr/bin/env python3
"""Boot a built sipassist image in QEMU and read the self-test's verdict from the serial console.

    image/vmboot.py OUT_DIR NAME [--timeout S]     e.g. image/vmboot.py image/out sipassist-arm64

Boots OUT_DIR/NAME.img with the image's own kernel and initrd (NAME.vmlinuz, NAME.initrd, kept
beside the image by build.sh), the disk as a throwaway snapshot, user-mode networking that
reaches nothing outside the VM (restrict=on). The kernel command line starts
sipassist-selftest.service, which prints "SIPASSIST-SELFTEST ..." lines and then powers off.
arm64 runs under TCG emulation (qemu-system-aarch64 -M virt: not a Pi, but the
same kernel, initrd, root filesystem and units). amd64 uses KVM when KVM can boot a stock
kernel here, else TCG as well. Exit status 0 when the verdict is PASS.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

RESULT = re.compile(r"SIPASSIST-SELFTEST-RESULT: (PASS|FAIL.*)")
APPEND = ("root=LABEL=RASPIROOT ro console={console} systemd.wants=sipassist-selftest.service "
          "sipassist.selftest=poweroff systemd.show_status=1 net.ifnames=0")


@dataclass
class Boot:
    accel: str = ""
    verdict: str = ""
    report: dict[str, str] = field(default_factory=dict)
    firstboot: list[str] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)  # sipassist's journal, sent on FAIL
    console: list[str] = field(default_factory=list)
    seconds_to_verdict: float = 0.0
    powered_off: bool = False


def kvm_boots(kernel: Path, timeout: float = 20) -> bool:
    """Whether KVM here runs a stock kernel: boot it with no root and wait for its banner.

    /dev/kvm is not enough: some VMs offer a paravirtual KVM (kvm-pvm) that only runs guests
    built for it, where a Debian kernel hangs silently. Then QEMU emulates (TCG) instead.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    probe = subprocess.Popen(
        ["qemu-system-x86_64", "-enable-kvm", "-M", "q35", "-cpu", "host,-arch-capabilities",
         "-m", "256", "-nographic", "-no-reboot", "-nic", "none", "-kernel", str(kernel),
         "-append", "console=ttyS0 panic=-1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    seen = threading.Event()

    def read() -> None:
        assert probe.stdout is not None
        for raw in probe.stdout:
            if b"Linux version" in raw:
                seen.set()
                return

    threading.Thread(target=read, daemon=True).start()
    try:
        return seen.wait(timeout)
    finally:
        os.killpg(probe.pid, signal.SIGKILL)
        probe.wait()


def qemu_command(arch: str, out: Path, name: str, accel: str = "auto") -> list[str]:
    image, kernel, initrd = (out / f"{name}{ext}" for ext in (".img", ".vmlinuz", ".initrd"))
    for path in (image, kernel, initrd):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: build it with image/build.sh")
    if arch == "amd64":
        if accel == "auto":
            accel = "kvm" if kvm_boots(kernel) else "tcg"
        if accel == "kvm":
            # The host CPU, less the MSR that nested KVM refuses to set.
            machine = ["qemu-system-x86_64", "-enable-kvm", "-M", "q35",
                       "-cpu", "host,-arch-capabilities"]
        else:
            machine = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-M", "q35",
                       "-cpu", "max"]
        console = "ttyS0"
    else:
        machine = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72",
                   "-accel", "tcg,thread=multi"]
        console = "ttyAMA0"
    return [*machine, "-smp", "2", "-m", "2048", "-nographic", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", APPEND.format(console=console),
            "-drive", f"file={image},format=raw,if=virtio,snapshot=on",
            "-nic", "user,model=virtio-net-pci,restrict=on"]


def boot(arch: str, out: Path, name: str, timeout: float, log: Path | None = None,
         accel: str = "auto") -> Boot:
    """Boot, wait for the verdict line (or QEMU's end, or the timeout), stop QEMU by its PID."""
    command = qemu_command(arch, out, name, accel)
    result = Boot(accel="kvm" if "-enable-kvm" in command else "tcg")
    started = time.monotonic()
    qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert qemu.stdout is not None
        for raw in qemu.stdout:
            lines.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    sink = open(log, "w") if log else None
    try:
        deadline = started + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:  # QEMU exited
                break
            result.console.append(line)
            if sink:
                sink.write(line + "\n")
                sink.flush()
            text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)
            if (match := RESULT.search(text)) and not result.verdict:
                result.verdict = match.group(1)
                result.seconds_to_verdict = time.monotonic() - started
                # The self-test powers the VM off next; give it a moment to do so cleanly.
                deadline = min(deadline, time.monotonic() + 60)
            elif "SIPASSIST-SELFTEST journal: " in text:
                result.journal.append(text.split("SIPASSIST-SELFTEST journal: ", 1)[1])
            elif "SIPASSIST-SELFTEST firstboot: " in text:
                result.firstboot.append(text.split("SIPASSIST-SELFTEST firstboot: ", 1)[1])
            elif "SIPASSIST-SELFTEST growroot: " in text:
                result.firstboot.append(text.split("SIPASSIST-SELFTEST growroot: ", 1)[1])
            elif (match := re.search(r"SIPASSIST-SELFTEST (\S+?)=(.*)$", text)):
                result.report[match.group(1)] = match.group(2)
            if "reboot: Power down" in text:
                result.powered_off = True
    finally:
        if qemu.poll() is None:
            os.killpg(qemu.pid, signal.SIGKILL)  # its own session: QEMU and nothing else
        qemu.wait()
        if sink:
            sink.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("name")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                        help="amd64 only: KVM if it boots a stock kernel here, else TCG")
    args = parser.parse_args()
    arch = "amd64" if "-amd64" in args.name else "arm64"
    if not shutil.which("qemu-system-x86_64" if arch == "amd64" else "qemu-system-aarch64"):
        sys.exit(f"vmboot: QEMU for {arch} is missing: run image/host-deps.sh {arch}")
    log = args.out / f"{args.name}.console.log"
    result = boot(arch, args.out, args.name, args.timeout, log, args.accel)
    for key, value in result.report.items():
        print(f"{key} = {value}")
    for line in result.firstboot:
        print(f"firstboot: {line}")
    for line in result.journal:
        print(f"journal: {line}")
    print(f"verdict ({result.accel}): {result.verdict or 'none (timeout or QEMU ended)'} after "
          f"{result.seconds_to_verdict:.0f} s; powered off: {result.powered_off}; console in {log}")
    return 0 if result.verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
