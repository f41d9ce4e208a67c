#!/usr/bin/env bash
# The build host's tools for image/build.sh and the boot test, from Debian's archive.
#
#   image/host-deps.sh [amd64|arm64]            install what is missing (default arm64)
#   image/host-deps.sh --check [amd64|arm64]    only say what is missing (exit 1 if anything)
#
# amd64 (the boot test's variant on an x86_64 host) needs no emulation: QEMU with KVM. arm64
# adds qemu-user (mmdebstrap runs arm64 maintainer scripts through binfmt_misc), the aarch64
# cross compiler (llama-cpp-python's wheel) and qemu-system-arm (booting the Pi image in QEMU).
set -euo pipefail

check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
arch=${1:-arm64}
common=(mmdebstrap genimage dosfstools mtools fdisk e2fsprogs bmap-tools zstd file curl
        python3-venv qemu-system-x86 ipxe-qemu)
case "$arch" in
    amd64) packages=("${common[@]}") ;;
    arm64) packages=("${common[@]}" qemu-user-static binfmt-support arch-test qemu-system-arm
                     g++-aarch64-linux-gnu gcc-aarch64-linux-gnu cmake) ;;
    *) echo "host-deps.sh: write amd64 or arm64, not '$arch'" >&2; exit 2 ;;
esac

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ $check = 1 ]; then
    [ ${#missing[@]} -eq 0 ] || { echo "image: missing host packages: ${missing[*]}" >&2; exit 1; }
else
    if [ ${#missing[@]} -gt 0 ]; then
        echo "image: installing host packages: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null || { apt-get update -qq && \
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null; }
    fi
fi

# arm64 maintainer scripts run through qemu-user: binfmt_misc must be mounted (containers and
# some VMs start without it), and the handler registered.
if [ "$arch" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then
    if [ $check = 0 ]; then
        mountpoint -q /proc/sys/fs/binfmt_misc \
            || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    fi
    arch-test arm64 >/dev/null 2>&1 || {
        echo "image: this host cannot run arm64 programs (arch-test arm64 failed): run" \
             "image/host-deps.sh arm64 (it mounts binfmt_misc and installs qemu-user-static)" >&2
        exit 1
    }
fi
