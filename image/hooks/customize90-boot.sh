#!/usr/bin/env bash
# mmdebstrap hook, last: the initramfs, built once now that every package is in (INITRD=No
# kept the kernel's postinst from building one), and on arm64 the Raspberry Pi boot files.
set -euo pipefail
root=$1
arch=${SIPASSIST_IMAGE_ARCH:?set by image/build.sh}

kver=$(basename "$(ls -d "$root"/lib/modules/* | sort -V | tail -n1)")
[ -n "$kver" ] || { echo "image: error: no kernel in $root/lib/modules" >&2; exit 1; }
started=$(date +%s)
chroot "$root" env -u INITRD update-initramfs -c -k "$kver" >/dev/null
echo "image: initramfs for $kver built in $(( $(date +%s) - started )) s"

if [ "$arch" = arm64 ]; then
    # raspi-firmware's kernel hook copies kernel, initrd and DTBs to /boot/firmware and writes
    # cmdline.txt from these settings: root by label; a login on the screen and on the serial
    # port (ttyS1 = GPIO 14/15 on a Pi 3/4), boot messages on the serial port (the last one).
    cat > "$root/etc/default/raspi-firmware" <<'CONF'
# Read by raspi-firmware's kernel hook when it writes /boot/firmware/cmdline.txt (see the
# package's /usr/share/doc/raspi-firmware for every setting). Set by the sipassist image build.
ROOTPART=LABEL=RASPIROOT
CONSOLES="tty0 ttyS1,115200"
CONF
    chroot "$root" env -u INITRD DEB_MAINT_PARAMS=configure \
        /etc/kernel/postinst.d/z50-raspi-firmware "$kver" "/boot/vmlinuz-$kver"
    for needed in config.txt cmdline.txt start4.elf bcm2711-rpi-4-b.dtb; do
        [ -e "$root/boot/firmware/$needed" ] \
            || { echo "image: error: raspi-firmware did not put $needed on the boot partition" >&2; exit 1; }
    done
    echo "image: Raspberry Pi boot files in /boot/firmware ($(tr -d '\n' < "$root/boot/firmware/cmdline.txt"))"
fi
