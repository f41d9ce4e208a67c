#!/usr/bin/env bash
# mmdebstrap hook: turn the installed root into an appliance image: services enabled, nothing
# per-box baked in (API token, ssh host keys: made on first boot), examples on the boot partition.
set -euo pipefail
root=$1
repo=${SIPASSIST_IMAGE_REPO:?set by image/build.sh}

systemctl --root="$root" enable systemd-networkd.service systemd-resolved.service \
    systemd-timesyncd.service sipassist-firstboot.service sipassist-growroot.service >/dev/null
systemctl --root="$root" is-enabled sipassist.service >/dev/null \
    || { echo "image: error: install.sh did not enable sipassist.service" >&2; exit 1; }
# Wi-Fi starts when wlan0 appears (a Pi has one, QEMU not); its drop-in waits for wifi.conf.
wants=$root/etc/systemd/system/sys-subsystem-net-devices-wlan0.device.wants
mkdir -p "$wants"
ln -sfn /lib/systemd/system/wpa_supplicant@.service "$wants/wpa_supplicant@wlan0.service"
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"

# One image, many boxes: each makes its own token and host keys at first boot.
sed -i 's/^token = ".*"$/# token = ""/' "$root/etc/sipassist/sipassist.toml"
rm -f "$root"/etc/ssh/ssh_host_*
# A fresh machine-id at first boot (mmdebstrap leaves it empty; keep it so).
: > "$root/etc/machine-id"

# The boot partition's examples; the shipped sipassist.toml is the commented defaults.
firmware=$root/boot/firmware
mkdir -p "$firmware"
cp "$repo/image/bootfs/README.txt" "$repo/image/bootfs/wifi.conf.example" "$firmware/"
{
    cat "$repo/image/bootfs/sipassist.toml.header"
    cat "$repo/config/sipassist.toml"
} > "$firmware/sipassist.toml"
echo "image: appliance services enabled, per-box secrets removed, boot partition examples added"
