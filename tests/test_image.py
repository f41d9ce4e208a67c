"""The SD image, built and booted: image/build.sh's small variant in QEMU.

The small variant runs every customisation step of the Raspberry Pi image (the same mmdebstrap
hooks: overlay, install.sh offline from host-fetched wheels, appliance setup, one initramfs) for
x86_64 and without the local LLM: it builds natively (no qemu-user emulation) in about two
minutes and boots under KVM where KVM runs a stock kernel, else under TCG in one to two minutes.
The arm64 image is the documented `image/build.sh` + `image/vmboot.py` run (image/README.md).

The test edits the card's FAT partition as a person would (a sipassist.toml and a wifi.conf),
boots the image on a disk 1 GiB larger than the image (as a card is) with
sipassist-selftest.service on the kernel command line, and reads the report the VM prints on
its serial console: sipassist.service active, no failed unit, /health healthy inside the VM,
what the first-boot step did, and the root file system grown to the end of the disk.

Needs root, the network to Debian's archive and PyPI, ~8 GB in /var/tmp, and the host tools
(`image/host-deps.sh amd64`; ./install.sh --dev installs them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.image, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
NAME = "sipassist-amd64-small"
# What a person writes on the card: the SIP identity, time zone and station port. No
# [sip.registrar]: the VM reaches no PBX, and sipassist reports ready (and healthy) only once
# registered with the one it is given (test_image_firstboot.py covers a registrar's settings).
CARD_CONFIG = """\
[sip]
user = "imagetest"
display_name = "Image Test"

[tools]
timezone = "Europe/Berlin"

[station]
protocol = "none"
port = "/dev/ttyUSB3"

[llm]
# The small image has no local LLM.
backend = "none"
"""
WIFI = "country=DE\nssid=Test Network\npsk=correct horse battery\n"


def _vmboot():
    spec = importlib.util.spec_from_file_location("vmboot", REPO / "image" / "vmboot.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["vmboot"] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def _skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("image/build.sh needs root (mmdebstrap --mode=root, chroot)")
    missing = subprocess.run([str(REPO / "image" / "host-deps.sh"), "--check", "amd64"],
                             capture_output=True, text=True)
    if missing.returncode != 0:
        pytest.skip(f"{missing.stderr.strip()}: run image/host-deps.sh amd64")


def _partitions(image: Path) -> tuple[int, int]:
    """The FAT partition's byte offset and the root partition's size in MiB."""
    table = json.loads(subprocess.run(["sfdisk", "-J", str(image)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    fat, root = table["partitions"]
    assert fat["type"] == "c" and fat.get("bootable") and root["type"] == "83", table
    sector = table.get("sectorsize", 512)
    return fat["start"] * sector, root["size"] * sector // 2**20


def test_small_image_builds_boots_and_serves_health() -> None:
    _skip_unless_possible()
    vmboot = _vmboot()
    times: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="sipassist-image-test.", dir="/var/tmp"))
    try:
        out = work / "out"
        started = time.monotonic()
        built = subprocess.run([str(REPO / "image" / "build.sh"), "--arch", "amd64", "--small",
                                "--out", str(out)], env={**os.environ, "TMPDIR": str(work)},
                               capture_output=True, text=True, timeout=2400,
                               stdin=subprocess.DEVNULL)
        times["build"] = time.monotonic() - started
        print(built.stdout[-6000:], built.stderr[-3000:])
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        log = (out / f"{NAME}.build.log").read_text()
        for step in ("image: copied the rootfs overlay",
                     "sipassist: installed and enabled: systemd starts sipassist.service",
                     "all checks passed", "image: sipassist installed by install.sh",
                     "image: appliance services enabled", "image: initramfs for"):
            assert step in log, step
        assert "update-initramfs: Generating" not in log.split("image: sipassist installed")[0]
        image = out / f"{NAME}.img"
        assert (out / f"{NAME}.img.bmap").is_file()
        manifest = (out / f"{NAME}.manifest").read_text()
        assert "baresip-core " in manifest and "\nsipassist==" in manifest
        assert "llama" not in manifest  # the small variant leaves the LLM out

        # The card as shipped: the commented example config and the Wi-Fi example.
        fat_offset, root_mib = _partitions(image)
        fat = f"{image}@@{fat_offset}"
        listing = subprocess.run(["mdir", "-b", "-i", fat, "::"], capture_output=True,
                                 text=True, check=True).stdout
        for name in ("SIPASSIST.TOML", "WIFI.CONF.EXAMPLE", "README.TXT"):
            assert name in listing.upper(), listing
        shipped = subprocess.run(["mtype", "-i", fat, "::sipassist.toml"], capture_output=True,
                                 text=True, check=True).stdout
        assert shipped.startswith("# sipassist settings on the boot partition.")
        assert '# token = ""' in shipped

        # Edited as a person would, on any computer: FAT files, no mount needed.
        for name, text in (("sipassist.toml", CARD_CONFIG), ("wifi.conf", WIFI)):
            source = work / name
            source.write_text(text)
            subprocess.run(["mcopy", "-o", "-i", fat, str(source), f"::{name}"], check=True)

        # A card bigger than the image: the root partition grows into the rest at first boot.
        os.truncate(image, image.stat().st_size + 2**30)

        started = time.monotonic()
        result = vmboot.boot("amd64", out, NAME, timeout=600, log=work / "console.log")
        times[f"boot to verdict ({result.accel})"] = result.seconds_to_verdict
        times["boot total"] = time.monotonic() - started
        print("\n".join(result.console[-80:]))
        report = result.report
        print(f"sipassist restarts in the VM: {report.get('sipassist-restarts')}; "
              f"boot: {report.get('boot-time')}")
        assert result.verdict == "PASS", (result.verdict, report, "\n".join(result.journal))
        assert report["sipassist.service"] == "active"
        assert report["failed-units"] == "none"
        assert '"status": "healthy"' in report["health"].replace('":"', '": "')
        assert report["system"] == "running"
        # First boot: the card's config installed with a token made on the box, the zone set,
        # Wi-Fi written, ssh host keys made.
        assert report["sip-user"] == "imagetest"
        assert report["api-token"] == "set"
        assert report["localtime"] == "/usr/share/zoneinfo/Europe/Berlin"
        assert report["wifi-conf"] == "present"
        assert int(report["ssh-host-keys"]) >= 3
        joined = "\n".join(result.firstboot)
        assert "installed /boot/firmware/sipassist.toml as /etc/sipassist/sipassist.toml" in joined
        assert "'imagetest'" in joined and "'/dev/ttyUSB3'" in joined
        assert "Wi-Fi network 'Test Network' (country DE) set up for wlan0" in joined
        assert "generated this box's ssh host keys" in joined
        grown = re.search(rf"grew /dev/vda2 from {root_mib} MiB to (\d+) MiB", joined)
        assert grown and int(grown.group(1)) >= root_mib + 1000, joined  # growpart aligns the end
        assert int(report["root-size-mib"]) > root_mib + 512
        assert result.powered_off, "the self-test did not power the VM off"
    finally:
        print("image test times: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
        shutil.rmtree(work, ignore_errors=True)
