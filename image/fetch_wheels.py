#!/usr/bin/env python3
"""Fill a directory with every wheel sipassist's install needs on the image, fetched on the host.

    fetch_wheels.py ARCH EXTRAS CACHE_DIR      e.g. fetch_wheels.py arm64 models,llm,systemd /var/cache/sipassist-image

Prints the directory. pip inside the image build runs offline (--no-index --find-links), so
everything install.sh's `pip install` asks for must be here: the dependencies from
pyproject.toml for the image's Python (Debian 12: CPython 3.11, glibc 2.36) and architecture,
pip itself (install.sh upgrades it), setuptools and wheel (building sipassist and the sdist-only
systemd-python). llama-cpp-python has no aarch64 wheel on PyPI: the cross-built one from
build-llama-wheel.sh is copied in from CACHE_DIR/wheels-arm64/.

The directory is keyed by a hash of the requirement list, architecture and Python version, so
a second build with the same pyproject.toml reuses it without touching the network.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON_VERSION = "3.11"  # Debian 12's python3
GLIBC_MINOR = 36  # Debian 12's glibc 2.36: every manylinux tag up to it installs
MACHINE = {"arm64": "aarch64", "amd64": "x86_64"}
# Packages PyPI has only as source; they are built inside the image by pip (needs the
# compiler and headers install.sh installs) and so come with their build backends.
SDIST_ONLY = {"systemd-python"}
BUILD_TOOLS = ["pip", "setuptools>=68", "wheel"]
# Built by build-llama-wheel.sh for arm64; on amd64 PyPI's sdist would compile in the image.
CROSS_BUILT = {"llama-cpp-python"}


def requirements(extras: list[str]) -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    wanted = list(project["dependencies"])
    for extra in extras:
        if extra not in optional:
            sys.exit(f"fetch_wheels: unknown extra {extra!r}; pyproject.toml has "
                     f"{', '.join(sorted(optional))}")
        wanted += optional[extra]
    return wanted


def no_deps() -> list[str]:
    """Wheels install.sh installs without their dependencies ([tool.sipassist] no-deps)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return list(project.get("tool", {}).get("sipassist", {}).get("no-deps", []))


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def pip_download(pip: list[str], dest: Path, args: list[str]) -> None:
    done = subprocess.run([*pip, "download", "-q", "--disable-pip-version-check", "-d", str(dest),
                           *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        sys.exit("fetch_wheels: pip download failed:\n" + "\n".join(
            line for line in done.stdout.splitlines() if "is ignored" not in line))


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[1] not in MACHINE:
        sys.exit(__doc__.split("\n\n")[1])
    arch, extras, cache = sys.argv[1], [e for e in sys.argv[2].split(",") if e], Path(sys.argv[3])
    wanted = requirements(extras)
    alone = no_deps()
    key_text = "\n".join([arch, PYTHON_VERSION, *sorted(wanted), *BUILD_TOOLS, *alone])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    dest = cache / "wheels" / f"{arch}-py{PYTHON_VERSION}-{key}"
    if (dest / ".complete").is_file():
        print(dest)
        return

    machine = MACHINE[arch]
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in range(17, GLIBC_MINOR + 1)]
    platforms += [f"manylinux2014_{machine}", f"linux_{machine}"]
    target = ["--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", "cp311",
              "--abi", "abi3", "--abi", "none", "--only-binary=:all:"]
    for platform in platforms:
        target += ["--platform", platform]
    pip = [sys.executable, "-m", "pip"]

    binary = [r for r in wanted if name_of(r) not in SDIST_ONLY | CROSS_BUILT]
    sdists = [r for r in wanted if name_of(r) in SDIST_ONLY]
    cross = [r for r in wanted if name_of(r) in CROSS_BUILT]
    # Filled beside its final place and renamed when complete: an interrupted download is
    # never taken for a finished one.
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    try:
        pip_download(pip, partial, [*target, *binary, *BUILD_TOOLS])
        if alone:
            pip_download(pip, partial, [*target, "--no-deps", *alone])
        if sdists:
            pip_download(pip, partial, ["--no-deps", "--no-binary", ":all:", *sdists])
        for requirement in cross:
            version = requirement.partition("==")[2]
            # The cross-built wheel's own dependencies are ordinary wheels.
            pip_download(pip, partial, [*target, "typing-extensions>=4.5.0", "numpy>=1.20.0",
                                        "diskcache>=5.6.1", "jinja2>=2.11.3"])
            if arch == "arm64":
                built = cache / "wheels-arm64" / f"llama_cpp_python-{version}-py3-none-linux_aarch64.whl"
                if not built.is_file():
                    sys.exit(f"fetch_wheels: {built} is missing: run image/build-llama-wheel.sh first")
                shutil.copy2(built, partial)
            else:
                pip_download(pip, partial, ["--no-deps", "--no-binary", ":all:", requirement])
        (partial / ".complete").write_text(key_text + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(dest)


if __name__ == "__main__":
    main()
