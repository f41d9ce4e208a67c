#!/usr/bin/env bash
# mmdebstrap hook: copy image/rootfs/ (units, network config, first-boot and self-test scripts,
# fstab, initramfs module list) into the new root, owned by root.
set -euo pipefail
root=$1
overlay=${SIPASSIST_IMAGE_REPO:?set by image/build.sh}/image/rootfs
tar -C "$overlay" --owner=0 --group=0 -cf - . | tar -C "$root" --no-same-owner -xf -
echo "image: copied the rootfs overlay"
