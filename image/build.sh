#!/usr/bin/env bash
# Build the sipassist SD card image: Debian 12 (bookworm) with sipassist installed by install.sh.
#
#   sudo image/build.sh                      the Raspberry Pi image (arm64, with the local LLM)
#   sudo image/build.sh --arch amd64 --small the boot test's variant: same steps, x86_64, no LLM
#
# Options: --arch arm64|amd64, --small (extras models,systemd: no llama-cpp-python, no LLM
# weights), --out DIR (default image/out), --cache DIR (default /var/cache/sipassist-image),
# --compress (also write a .img.zst).
# Writes DIR/sipassist-<arch>[-small].img with its .bmap, the kernel and initrd (for QEMU) and a
# .manifest (Debian packages and Python distributions in the image). Needs root and the network
# to Debian's archive and PyPI; see image/README.md for the host packages and the timings.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
arch=arm64
small=0
out=$here/out
cache=${SIPASSIST_IMAGE_CACHE:-/var/cache/sipassist-image}
compress=0
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) arch=${2:?--arch needs arm64 or amd64}; shift ;;
        --small) small=1 ;;
        --out) out=${2:?--out needs a directory}; shift ;;
        --cache) cache=${2:?--cache needs a directory}; shift ;;
        --compress) compress=1 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '\033[1mimage:\033[0m %s\n' "$*"; }
fail() { printf 'image: error: %s\n' "$*" >&2; exit 1; }

case "$arch" in
    arm64) kernel=linux-image-arm64 console=ttyAMA0 ;;
    amd64) kernel=linux-image-amd64 console=ttyS0 ;;
    *) fail "--arch $arch: write arm64 or amd64" ;;
esac
[ "$(id -u)" -eq 0 ] || fail "run as root (mmdebstrap --mode=root, chroot, file ownership in the image)"
"$here/host-deps.sh" --check "$arch" || fail "host tools missing: run  image/host-deps.sh $arch"

name=sipassist-$arch
extras=models,llm,systemd
if [ $small = 1 ]; then
    name=$name-small
    extras=models,systemd
fi

# What goes in the image: Debian's kernel (+ the Pi firmware on arm64), systemd with networkd,
# ssh, Wi-Fi, growpart (the root grows to the card), and what install.sh would install itself (listed so that one apt run does it all;
# install.sh then finds them installed).
packages=(systemd-sysv udev dbus kmod iproute2 netbase ca-certificates tzdata locales
          systemd-timesyncd systemd-resolved openssh-server wpasupplicant iw curl less nano
          dosfstools e2fsprogs cloud-guest-utils zstd initramfs-tools "$kernel" libgomp1
          baresip-core jackd2 libportaudio2 espeak-ng sox libsox-fmt-all python3 python3-venv
          python3-dev build-essential cmake libsystemd-dev pkg-config passwd procps)
[ "$arch" = arm64 ] && packages+=(raspi-firmware firmware-brcm80211)

started=$(date +%s)
lap=$started
step() {  # print the time the previous step took
    local now
    now=$(date +%s)
    say "$1 ($(( now - lap )) s)"
    lap=$now
}

mkdir -p "$cache" "$out"
# A venv for the host-side Python tools (pip download), made once.
if [ ! -x "$cache/venv/bin/python" ]; then
    python3 -m venv "$cache/venv" || fail "python3 -m venv failed: apt-get install python3-venv"
fi
if [ $small = 0 ] && [ "$arch" = arm64 ]; then
    "$here/build-llama-wheel.sh" "$cache"
    step "llama-cpp-python arm64 wheel ready"
fi
wheels=$("$cache/venv/bin/python" "$here/fetch_wheels.py" "$arch" "$extras" "$cache") \
    || fail "could not fetch the wheels (see above)"
step "wheels for $arch ready in $wheels"

work=$(mktemp -d "${TMPDIR:-/var/tmp}/sipassist-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

# Reproducible inputs: the commit's time stamps the files; the Debian archive's state and the
# wheel set (see the manifest) are the remaining inputs.
SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH
# INITRD=No: the kernel's postinst makes no initramfs; customize90-boot.sh makes it once.
export INITRD=No SIPASSIST_IMAGE_REPO=$repo SIPASSIST_IMAGE_WHEELS=$wheels \
    SIPASSIST_IMAGE_EXTRAS=$extras SIPASSIST_IMAGE_ARCH=$arch
mirror=http://deb.debian.org/debian
if ! mmdebstrap --mode=root --variant=minbase --arch="$arch" --format=directory \
        --components=main,non-free-firmware --include="$(IFS=,; echo "${packages[*]}")" \
        --dpkgopt=path-exclude=/usr/share/doc/* --dpkgopt=path-include=/usr/share/doc/*/copyright \
        --dpkgopt=path-exclude=/usr/share/man/* --dpkgopt=path-exclude=/usr/share/locale/* \
        --hook-directory="$here/hooks" \
        bookworm "$rootfs" \
        "deb $mirror bookworm main non-free-firmware" \
        "deb $mirror bookworm-updates main non-free-firmware" \
        "deb http://deb.debian.org/debian-security bookworm-security main non-free-firmware" \
        > "$work/mmdebstrap.log" 2>&1; then
    tail -n 40 "$work/mmdebstrap.log" >&2
    fail "mmdebstrap failed (last lines above)"
fi
# The log stays beside the image; the hooks' and install.sh's own lines are shown here.
sed 's/\x1b\[[0-9;]*m//g' "$work/mmdebstrap.log" > "$out/$name.build.log"
grep -E '^(image|sipassist): ' "$out/$name.build.log" || true
step "root filesystem built ($(du -sh "$rootfs" | cut -f1))"

# The cross-built llama.cpp libraries must load on the target (run through qemu-user on an
# x86_64 host): a wrong architecture or a missing library fails here, not on the Pi.
if [[ ",$extras," == *,llm,* ]]; then
    chroot "$rootfs" /opt/sipassist/venv/bin/python -c \
        'import llama_cpp; print("image: llama-cpp-python", llama_cpp.__version__, "loads:",
              llama_cpp.llama_print_system_info().decode().strip()[:80])' \
        || fail "llama-cpp-python does not load in the image (see above)"
fi

# The kernel and initrd beside the image, for QEMU's -kernel/-initrd (a Pi boots them from the
# FAT partition instead).
kver=$(basename "$(ls -d "$rootfs"/lib/modules/* | sort -V | tail -n1)")
cp "$rootfs/boot/vmlinuz-$kver" "$out/$name.vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$out/$name.initrd"
{
    echo "# $name, built $(date -u +%Y-%m-%dT%H:%MZ) from $(git -C "$repo" describe --always --dirty 2>/dev/null || echo 'a source tree')"
    echo "# kernel $kver; QEMU console $console"
    echo "## Debian packages"
    chroot "$rootfs" dpkg-query -W -f='${Package} ${Version}\n'
    echo "## Python distributions in /opt/sipassist/venv"
    chroot "$rootfs" /opt/sipassist/venv/bin/python -m pip list --format=freeze 2>/dev/null
} > "$out/$name.manifest"

# The card: MBR, FAT32 boot partition RASPIFIRM (what the Pi firmware reads), ext4 root
# RASPIROOT sized to the content plus room for calls, logs and a later apt upgrade.
root_mib=$(( $(du -sm --exclude=./boot/firmware "$rootfs" | cut -f1) * 13 / 10 + 512 ))
sed -e "s/@ROOT_SIZE@/${root_mib}M/" -e "s/@NAME@/$name.img/" "$here/genimage.cfg" > "$work/genimage.cfg"
mkdir -p "$work/genimage-tmp" "$work/genimage-out"
genimage --config "$work/genimage.cfg" --rootpath "$rootfs" --tmppath "$work/genimage-tmp" \
    --inputpath "$work/genimage-out" --outputpath "$work/genimage-out" > "$work/genimage.log" 2>&1 \
    || { tail -n 30 "$work/genimage.log" >&2; fail "genimage failed (last lines above)"; }
rm -f "$out/$name.img" "$out/$name.img.bmap" "$out/$name.img.zst"
mv "$work/genimage-out/$name.img" "$out/$name.img"
bmaptool -q create -o "$out/$name.img.bmap" "$out/$name.img"
step "image written: $out/$name.img ($(du -h --apparent-size "$out/$name.img" | cut -f1), $(du -h "$out/$name.img" | cut -f1) used)"
if [ $compress = 1 ]; then
    zstd -q -T0 -10 "$out/$name.img" -o "$out/$name.img.zst"
    step "compressed: $out/$name.img.zst ($(du -h "$out/$name.img.zst" | cut -f1))"
fi
say "done in $(( $(date +%s) - started )) s: flash with  bmaptool copy $out/$name.img /dev/sdX"
