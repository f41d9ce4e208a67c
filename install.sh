#!/usr/bin/env bash
# Set up sipassist on Debian 12 / Raspberry Pi OS (bookworm), arm64 or x86_64.
#
#   sudo ./install.sh          install to /opt/sipassist, config in /etc/sipassist
#   sudo ./install.sh --run    ... and start it (systemd service, or in the foreground)
#   ./install.sh --dev         a development venv in ./.venv with the test tools
#
# Safe to run again: finished steps are skipped, an existing config is kept.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=system
run=0
for arg in "$@"; do
    case "$arg" in
        --dev) mode=dev ;;
        --run) run=1 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

say() { printf '\033[1msipassist:\033[0m %s\n' "$*"; }
fail() { printf 'sipassist: error: %s\n' "$*" >&2; exit 1; }
trap 'fail "step failed at line $LINENO: re-run ./install.sh after fixing the cause above"' ERR

# Debian packages: the SIP stack, the JACK server, a compiler for systemd-python, test tools.
packages=(baresip-core jackd2 libportaudio2 espeak-ng sox libsox-fmt-all
          python3 python3-venv python3-dev build-essential libsystemd-dev pkg-config)
[ "$mode" = dev ] && packages+=(sip-tester)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "run as root (or install sudo): apt packages are needed"
    sudo_cmd=(sudo)
fi

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "Debian packages already installed"
fi

# Debian's own Python, not one from PATH: the service runs it.
python=/usr/bin/python3
if [ "$mode" = dev ]; then
    venv="$here/.venv"
    extras="models,systemd,test"
    target=(-e "$here[$extras]")
else
    venv=/opt/sipassist/venv
    extras="models,systemd"
    target=("$here[$extras]")
fi

if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtualenv $venv"
    "${sudo_cmd[@]}" mkdir -p "$(dirname "$venv")"
    "${sudo_cmd[@]}" "$python" -m venv "$venv"
fi
say "installing sipassist and its models into $venv (first time: a few minutes)"
"${sudo_cmd[@]}" "$venv/bin/pip" install -q --upgrade pip
"${sudo_cmd[@]}" "$venv/bin/pip" install -q "${target[@]}"

if [ "$mode" = dev ]; then
    say "development venv ready: run the tests with  .venv/bin/python -m pytest"
    exit 0
fi

"${sudo_cmd[@]}" ln -sf "$venv/bin/sipassist" /usr/local/bin/sipassist
"${sudo_cmd[@]}" mkdir -p /etc/sipassist
if [ ! -e /etc/sipassist/sipassist.toml ]; then
    "${sudo_cmd[@]}" install -m 0640 "$here/config/sipassist.toml" /etc/sipassist/sipassist.toml
    say "wrote the default config /etc/sipassist/sipassist.toml"
else
    say "kept the existing config /etc/sipassist/sipassist.toml"
fi

systemd_running=0
[ -d /run/systemd/system ] && systemd_running=1
if [ $systemd_running = 1 ] && [ -f "$here/systemd/sipassist.service" ]; then
    "${sudo_cmd[@]}" install -m 0644 "$here/systemd/sipassist.service" /etc/systemd/system/
    "${sudo_cmd[@]}" systemctl daemon-reload
    "${sudo_cmd[@]}" systemctl enable sipassist.service >/dev/null
fi

say "installed. The models on this box:"
"${sudo_cmd[@]}" "$venv/bin/sipassist" models || true

if [ $run = 1 ]; then
    if [ $systemd_running = 1 ] && [ -f /etc/systemd/system/sipassist.service ]; then
        "${sudo_cmd[@]}" systemctl restart sipassist.service
        say "started: systemctl status sipassist; API on http://localhost:8080/health"
    else
        say "no systemd here: running in the foreground (Ctrl-C stops it)"
        trap - ERR
        exec "${sudo_cmd[@]}" "$venv/bin/sipassist" run
    fi
else
    say "start it with: sudo sipassist run   (or: systemctl start sipassist)"
fi
