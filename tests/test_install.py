"""install.sh on a fresh Debian 12: a minimal root from Debian's archive, the installer run in it.

Runs where it can (root, mmdebstrap or debootstrap, the network to Debian's archive and
PyPI, the default ports free); SIPASSIST_INSTALL_TEST=0 skips it. The appliance is installed
without the local LLM (SIPASSIST_EXTRAS=models,systemd): the llm extra compiles llama.cpp for
ten minutes in a fresh root (741 s measured), and the dev venv and the arm64 image build
install it already. Measured on a 2-core x86_64 VM: about 1 min bootstrap, 1-3 min for each
install.sh that downloads, seconds for the rest.

The flow: a first install.sh with PyPI unreachable must fail with a clear message, and the
next run finish the job; the chroot has no systemd, so it must end with the foreground hint;
the installed daemon is then started in the chroot as the sipassist user on loopback ports; a
further install.sh run must change nothing; --uninstall keeps the config and state, which a
new install picks up (same token); --uninstall --purge leaves nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import PortBlocks, free_tcp_port, loopback_sip_toml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
MIRROR = "http://deb.debian.org/debian"
# A private mount namespace: the mounts vanish with the command, nothing is left to unmount.
CHROOT_SCRIPT = """
root=$1; shift
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
exec chroot "$root" "$@"
"""
DEFAULT_PORTS = [(8080, socket.SOCK_STREAM), (5060, socket.SOCK_DGRAM),
                 (5060, socket.SOCK_STREAM), (5061, socket.SOCK_STREAM),
                 (4444, socket.SOCK_STREAM)]


def _bootstrapper() -> list[str] | None:
    if shutil.which("mmdebstrap"):
        return ["mmdebstrap", "--variant=minbase", "--mode=root", "bookworm"]
    if shutil.which("debootstrap"):
        return ["debootstrap", "--variant=minbase", "bookworm"]
    return None


def _port_free(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _skip_unless_possible() -> list[str]:
    if os.environ.get("SIPASSIST_INSTALL_TEST") == "0":
        pytest.skip("SIPASSIST_INSTALL_TEST=0")
    if os.geteuid() != 0:
        pytest.skip("install.sh and chroot need root")
    bootstrap = _bootstrapper()
    if bootstrap is None:
        pytest.skip("neither debootstrap nor mmdebstrap is installed (apt-get install debootstrap)")
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is missing")
    busy = [f"{port}/{'tcp' if kind == socket.SOCK_STREAM else 'udp'}"
            for port, kind in DEFAULT_PORTS if not _port_free(port, kind)]
    if busy:
        pytest.skip(f"the chroot shares this host's network and the default ports are taken: "
                    f"{', '.join(busy)} (install.sh's sipassist check would fail)")
    return bootstrap


class Chroot:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env

    def argv(self, *command: str) -> list[str]:
        env = [f"{key}={value}" for key, value in self.env.items()]
        return ["unshare", "--mount", "--propagation", "private", "--", "bash", "-c",
                CHROOT_SCRIPT, "chroot", str(self.root), "env", "-i", *env, *command]

    def run(self, *command: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*command), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")


def snapshot(chroot: Chroot) -> dict[str, str]:
    """What install.sh owns: each file's owner, mode, size and mtime, and the user entries."""
    seen: dict[str, str] = {}
    for top in ("etc/sipassist", "opt/sipassist", "usr/local/bin/sipassist"):
        base = chroot.root / top
        paths = [base, *base.rglob("*")] if base.is_dir() else [base]
        for path in paths:
            info = path.lstat()
            seen[str(path.relative_to(chroot.root))] = (
                f"{info.st_uid}:{info.st_gid} {info.st_mode:o} {info.st_size} {info.st_mtime_ns}")
    for table in ("passwd", "group", "shadow"):
        lines = chroot.path(f"/etc/{table}").read_text().splitlines()
        seen[table] = "\n".join(line for line in lines if "sipassist" in line)
    return seen


def child_of(parent: int) -> int | None:
    """The PID of `parent`'s (runuser's) child: the daemon."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                return int(proc.name)
    return None


def config_token(text: str) -> str:
    match = re.search(r'(?m)^token = "([^"]+)"$', text)
    assert match, "no [api] token in the installed config"
    return match.group(1)


def http(url: str, token: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_install_sh_in_a_fresh_debian_12(tmp_path: Path, ports: PortBlocks) -> None:
    bootstrap = _skip_unless_possible()
    times: dict[str, float] = {}
    root = tmp_path / "root"
    try:
        # -- a minimal Debian 12 from Debian's archive ---------------------------------------
        started = time.monotonic()
        done = subprocess.run([*bootstrap, str(root), MIRROR], capture_output=True, text=True,
                              timeout=1800)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        times["debootstrap"] = time.monotonic() - started

        shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb",
               "SIPASSIST_EXTRAS": "models,systemd"}
        # pip in the chroot trusts what pip on this host trusts (some networks intercept TLS).
        host_ca = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
        if Path(host_ca).is_file():
            shutil.copy(host_ca, root / "root" / "host-ca.crt")
            env["PIP_CERT"] = "/root/host-ca.crt"
        chroot = Chroot(root, env)

        (root / "root" / "sipassist").mkdir()
        pack = subprocess.Popen(["tar", "-C", str(REPO), "--exclude=./.git", "--exclude=./.venv",
                                 "--exclude=__pycache__", "--exclude=*.egg-info",
                                 "--exclude=./.pytest_cache", "--exclude=./build", "-cf", "-",
                                 "."], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-C", str(root / "root" / "sipassist"), "-xf", "-"],
                       stdin=pack.stdout, check=True)
        assert pack.wait() == 0

        # -- a run that fails (PyPI unreachable) says so, and the next run finishes the job ---
        started = time.monotonic()
        broken = Chroot(root, {**env, "PIP_INDEX_URL": "http://127.0.0.1:9/simple/",
                               "PIP_RETRIES": "0"})
        failed = broken.run("/root/sipassist/install.sh", timeout=3600)
        times["install.sh without PyPI"] = time.monotonic() - started
        print(failed.stdout + failed.stderr)
        assert failed.returncode == 1
        assert "sipassist: error: pip install failed" in failed.stderr
        assert not chroot.path("/etc/sipassist/sipassist.toml").exists()

        # -- install.sh, first full run --------------------------------------------------------
        started = time.monotonic()
        first = chroot.run("/root/sipassist/install.sh", timeout=3600)
        times["install.sh"] = time.monotonic() - started
        output = first.stdout + first.stderr
        print(output)
        assert first.returncode == 0, output[-5000:]
        assert "user sipassist already exists" in output  # made by the failed run
        assert "wrote the config /etc/sipassist/sipassist.toml with a new API token" in output
        assert "all checks passed" in output
        assert "No systemd here: start it in the foreground with" in output
        assert re.search(r"(sudo -u sipassist|runuser -u sipassist --) /opt/sipassist/venv/bin/"
                         r"sipassist run --config /etc/sipassist/sipassist.toml", output)

        config = chroot.path("/etc/sipassist/sipassist.toml")
        token = config_token(config.read_text())
        assert f"API token (kept in /etc/sipassist/sipassist.toml, [api] token): {token}" \
            in output
        passwd = chroot.path("/etc/passwd").read_text()
        entry = next(line for line in passwd.splitlines() if line.startswith("sipassist:"))
        _, _, uid, gid, _, home, shell = entry.split(":")
        assert home == "/var/lib/sipassist" and shell == "/usr/sbin/nologin"
        groups = chroot.path("/etc/group").read_text().splitlines()
        for group in ("dialout", "audio"):
            members = next(line for line in groups if line.startswith(f"{group}:"))
            assert "sipassist" in members.rsplit(":", 1)[1].split(","), members
        info = config.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (0, int(gid), 0o640)
        state = chroot.path("/var/lib/sipassist").stat()
        assert (state.st_uid, state.st_mode & 0o777) == (int(uid), 0o750)
        assert chroot.path("/opt/sipassist/src/README.md").is_file()
        assert chroot.path("/opt/sipassist/src/systemd/sipassist.service").is_file()
        assert os.readlink(chroot.path("/usr/local/bin/sipassist")) == \
            "/opt/sipassist/venv/bin/sipassist"
        assert chroot.path("/var/lib/sipassist/models/whisper-base/model.bin").is_file()

        # -- the installed daemon runs in the chroot, as its user, on loopback ---------------
        base = ports.take()
        api_port = free_tcp_port()
        test_config = chroot.path("/tmp/sipassist-test.toml")
        test_config.write_text(f"""
{loopback_sip_toml(base)}
[api]
host = "127.0.0.1"
port = {api_port}
token = "{token}"
[audio]
jack_server = "sipassist-install-test-{base}"
""")
        test_config.chmod(0o644)
        started = time.monotonic()
        log = open(tmp_path / "daemon.log", "wb")
        daemon = subprocess.Popen(
            chroot.argv("runuser", "-u", "sipassist", "--", "/opt/sipassist/venv/bin/sipassist",
                        "run", "--config", "/tmp/sipassist-test.toml"),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        url = f"http://127.0.0.1:{api_port}"
        try:
            body = None
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and daemon.poll() is None:
                try:
                    status, body = http(url + "/health")
                    if body.get("status") == "healthy":
                        break
                except OSError:
                    pass
                time.sleep(0.5)
            times["daemon ready"] = time.monotonic() - started
            assert body and body["status"] == "healthy", body
            assert http(url + "/queue")[0] == 401
            assert http(url + "/queue", token)[0] == 200
        finally:
            # SIGTERM to the daemon itself, as systemd would send it; runuser (whose own
            # SIGTERM ends in "Session terminated" and a signal exit) then returns its status.
            main = child_of(daemon.pid)
            if main is not None:
                os.kill(main, signal.SIGTERM)
            elif daemon.poll() is None:
                daemon.terminate()
            try:
                code = daemon.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                code = daemon.wait()
            log.close()
            print((tmp_path / "daemon.log").read_text(errors="replace")[-3000:])
        assert code == 0, "the daemon did not stop cleanly on SIGTERM"

        # -- install.sh again: nothing changes ------------------------------------------------
        before = snapshot(chroot)
        config_sum = hashlib.sha256(config.read_bytes()).hexdigest()
        started = time.monotonic()
        second = chroot.run("/root/sipassist/install.sh", timeout=1800)
        times["install.sh again"] = time.monotonic() - started
        output = second.stdout + second.stderr
        print(output)
        assert second.returncode == 0, output[-5000:]
        for words in ("Debian packages already installed", "user sipassist already exists",
                      "source already in /opt/sipassist/src",
                      "sipassist already installed in /opt/sipassist/venv",
                      "kept the existing config /etc/sipassist/sipassist.toml (already there)",
                      "all checks passed"):
            assert words in output, words
        assert "API token (" not in output  # a kept config's token is not printed again
        assert hashlib.sha256(config.read_bytes()).hexdigest() == config_sum
        assert config_token(config.read_text()) == token
        after = snapshot(chroot)
        changed = sorted(key for key in before.keys() | after.keys()
                         if before.get(key) != after.get(key))
        assert not changed, f"the second run changed {changed[:10]}"

        # -- --uninstall keeps config and state; installing again picks them up ----------------
        started = time.monotonic()
        gone = chroot.run("/root/sipassist/install.sh", "--uninstall", timeout=600)
        print(gone.stdout + gone.stderr)
        assert gone.returncode == 0
        assert not chroot.path("/opt/sipassist").exists()
        assert not os.path.lexists(chroot.path("/usr/local/bin/sipassist"))
        assert "sipassist:" not in chroot.path("/etc/passwd").read_text()
        model = chroot.path("/var/lib/sipassist/models/whisper-base/model.bin")
        assert config.is_file() and model.is_file()
        again = chroot.run("/root/sipassist/install.sh", timeout=3600)
        times["uninstall + install"] = time.monotonic() - started
        print(again.stdout + again.stderr)
        assert again.returncode == 0
        assert "kept the existing config" in again.stdout
        assert config_token(config.read_text()) == token
        passwd = chroot.path("/etc/passwd").read_text()
        uid = next(line for line in passwd.splitlines() if line.startswith("sipassist:")
                   ).split(":")[2]
        assert model.stat().st_uid == int(uid)  # the kept state belongs to the new user

        purged = chroot.run("/root/sipassist/install.sh", "--uninstall", "--purge", timeout=600)
        assert purged.returncode == 0, purged.stdout + purged.stderr
        for path in ("/opt/sipassist", "/etc/sipassist", "/var/lib/sipassist"):
            assert not chroot.path(path).exists(), path
    finally:
        print("install test times: " + ", ".join(f"{name} {seconds:.0f} s"
                                                 for name, seconds in times.items()))
        shutil.rmtree(root, ignore_errors=True)
