"""The SD image's first-boot step (image/rootfs/usr/local/sbin/sipassist-firstboot) on a temp root.

The script runs as it does at boot, with --root and --boot pointing at temp directories laid
out like the image (/etc/sipassist, /usr/share/zoneinfo, /boot/firmware). The QEMU boot test
(test_image.py) runs the same script on the real image.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "image" / "rootfs" / "usr" / "local" / "sbin" / "sipassist-firstboot"
SHIPPED = (REPO / "config" / "sipassist.toml").read_text()
IMAGE_TOKEN = "tokenmadeatfirstboot-0123456789"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A root as the image ships it: the installed config without a token, a zoneinfo file."""
    root = tmp_path / "root"
    (root / "etc/sipassist").mkdir(parents=True)
    (root / "etc/sipassist/sipassist.toml").write_text(SHIPPED)
    (root / "etc/sipassist/sipassist.toml").chmod(0o640)
    for zone in ("Europe/Berlin", "America/Chicago"):
        (root / "usr/share/zoneinfo" / zone).parent.mkdir(parents=True, exist_ok=True)
        (root / "usr/share/zoneinfo" / zone).write_bytes(b"TZif2")
    (root / "boot/firmware").mkdir(parents=True)
    return root


def firstboot(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root)], env=env,
                          capture_output=True, text=True, timeout=60)


def installed(root: Path) -> dict:
    return tomllib.loads((root / "etc/sipassist/sipassist.toml").read_text())


def boot_file(root: Path, name: str, text: str) -> None:
    (root / "boot/firmware" / name).write_text(text)


def test_no_boot_files_makes_a_token_once(root: Path) -> None:
    done = firstboot(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "generated a new API token" in done.stdout
    token = installed(root)["api"]["token"]
    assert len(token) >= 32
    config = root / "etc/sipassist/sipassist.toml"
    assert config.stat().st_mode & 0o777 == 0o640
    assert config.read_text().replace(f'token = "{token}"', '# token = ""') == SHIPPED

    again = firstboot(root)
    assert again.returncode == 0 and "generated" not in again.stdout
    assert installed(root)["api"]["token"] == token


def test_boot_config_is_installed_keeping_the_token(root: Path) -> None:
    config = root / "etc/sipassist/sipassist.toml"
    config.write_text(SHIPPED.replace('# token = ""', f'token = "{IMAGE_TOKEN}"'))
    boot_file(root, "sipassist.toml", '[sip]\r\nuser = "kitchen"\r\n\r\n[sip.registrar]\r\n'
              'domain = "pbx.example.lan"\r\nusername = "1050"\r\npassword = "s3cret"\r\n\r\n'
              '[tools]\r\ntimezone = "Europe/Berlin"\r\n\r\n[station]\r\nprotocol = "davis"\r\n'
              'port = "/dev/ttyUSB1"\r\n')
    done = firstboot(root)
    assert done.returncode == 0, done.stdout + done.stderr
    settings = installed(root)
    assert settings["sip"]["user"] == "kitchen"
    assert settings["sip"]["registrar"]["domain"] == "pbx.example.lan"
    assert settings["station"]["port"] == "/dev/ttyUSB1"
    assert settings["api"]["token"] == IMAGE_TOKEN
    assert "\r" not in config.read_text()
    assert "the API token is kept from the installed config" in done.stdout
    assert "installed" in done.stdout and "'kitchen'" in done.stdout
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/Europe/Berlin"
    assert (root / "etc/timezone").read_text() == "Europe/Berlin\n"
    assert "time zone set to Europe/Berlin" in done.stdout

    # Unchanged on the card: nothing is rewritten, and an edit made on the box stays.
    config.write_text(config.read_text().replace('"kitchen"', '"hall"'))
    before = config.stat().st_mtime_ns
    again = firstboot(root)
    assert again.returncode == 0
    assert "unchanged since it was applied" in again.stdout
    assert config.stat().st_mtime_ns == before
    assert installed(root)["sip"]["user"] == "hall"
    assert "time zone" not in again.stdout

    # Changed on the card: applied again.
    boot_file(root, "sipassist.toml", '[sip]\nuser = "garage"\n[tools]\ntimezone = "America/Chicago"\n')
    third = firstboot(root)
    assert third.returncode == 0, third.stdout
    assert installed(root)["sip"]["user"] == "garage"
    assert installed(root)["api"]["token"] == IMAGE_TOKEN
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/America/Chicago"


def test_the_shipped_example_on_the_card_installs_as_the_defaults(root: Path) -> None:
    header = (REPO / "image/bootfs/sipassist.toml.header").read_text()
    boot_file(root, "sipassist.toml", header + SHIPPED)
    done = firstboot(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "generated a new API token" in done.stdout
    assert set(installed(root)) == {"sip", "api", "audio", "paths", "queue", "models",
                                    "webhooks", "calls", "listening", "tools", "schedule",
                                    "station", "conversation", "llm", "knowledge", "texts",
                                    "model_api", "agents", "threads", "directory"}
    assert not (root / "etc/localtime").exists()  # timezone "" = leave the box's zone


def test_a_token_on_the_card_wins_and_an_empty_one_means_no_auth(root: Path) -> None:
    boot_file(root, "sipassist.toml", '[api]\ntoken = "mycardtoken-abcdefghijkl"\n')
    assert firstboot(root).returncode == 0
    assert installed(root)["api"]["token"] == "mycardtoken-abcdefghijkl"
    boot_file(root, "sipassist.toml", '[api]\ntoken = ""\n')
    done = firstboot(root)
    assert done.returncode == 0 and "generated" not in done.stdout
    assert installed(root)["api"]["token"] == ""


def test_an_invalid_config_is_not_installed_and_the_unit_fails(root: Path) -> None:
    config = root / "etc/sipassist/sipassist.toml"
    config.write_text(SHIPPED.replace('# token = ""', f'token = "{IMAGE_TOKEN}"'))
    before = config.read_bytes()
    boot_file(root, "sipassist.toml", '[sip]\nlisten = "5060"\n')
    done = firstboot(root)
    assert done.returncode == 1
    assert "error:" in done.stdout and "sip.listen" in done.stdout and "keeping the installed config" in done.stdout
    assert config.read_bytes() == before
    assert not list(config.parent.glob(".*firstboot*"))  # no temp file left behind

    boot_file(root, "sipassist.toml", "[sip\nuser = 1\n")
    broken = firstboot(root)
    assert broken.returncode == 1 and "not valid TOML" in broken.stdout
    boot_file(root, "sipassist.toml", '[tools]\ntimezone = "Mars/Olympus"\n')
    assert firstboot(root).returncode == 1
    assert not (root / "etc/localtime").exists()


def test_wifi_conf_becomes_wpa_supplicant_config_with_the_derived_key(root: Path) -> None:
    # IEEE 802.11i-2004 test vector: passphrase "password", SSID "IEEE".
    boot_file(root, "wifi.conf", "# home\ncountry=DE\nssid=IEEE\npsk=password\n")
    done = firstboot(root)
    assert done.returncode == 0, done.stdout + done.stderr
    conf = root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
    text = conf.read_text()
    assert conf.stat().st_mode & 0o777 == 0o600
    assert "psk=f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e" in text
    assert f"ssid={b'IEEE'.hex()}" in text and "country=DE" in text
    assert "password" not in text
    assert "Wi-Fi network 'IEEE' (country DE) set up for wlan0" in done.stdout
    assert (root / "var/lib/sipassist-firstboot/wifi.conf.sha256").read_text() == \
        hashlib.sha256((root / "boot/firmware/wifi.conf").read_bytes()).hexdigest()

    boot_file(root, "wifi.conf", "country=DE\nssid=Cafe \"Zur Post\"\n")
    assert firstboot(root).returncode == 0
    text = conf.read_text()
    assert "key_mgmt=NONE" in text and 'Cafe "Zur Post"'.encode().hex() in text

    boot_file(root, "wifi.conf", "ssid=Home\npsk=short\ncountry=DE\n")
    bad = firstboot(root)
    assert bad.returncode == 1 and "psk= must be 8 to 63 characters" in bad.stdout
    assert 'Cafe "Zur Post"'.encode().hex() in conf.read_text()  # the last good one stays
