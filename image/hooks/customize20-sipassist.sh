#!/usr/bin/env bash
# mmdebstrap hook: install sipassist with install.sh itself, as on any Debian box, but offline:
# pip takes only the wheels fetched on the host (PIP_NO_INDEX, PIP_FIND_LINKS). It runs in its
# own network namespace (loopback only), so nothing it does can reach the network or collide
# with ports on the build host; the namespace's mounts vanish with it.
set -euo pipefail
root=$1
repo=${SIPASSIST_IMAGE_REPO:?set by image/build.sh}
wheels=${SIPASSIST_IMAGE_WHEELS:?set by image/build.sh}
extras=${SIPASSIST_IMAGE_EXTRAS:?set by image/build.sh}

src=$root/tmp/sipassist-src
rm -rf "$src"
mkdir -p "$src" "$root/tmp/wheels"
# The project as install.sh sees it in a checkout (the same excludes install.sh uses).
tar -C "$repo" --exclude=./.git --exclude=./.venv --exclude='__pycache__' --exclude=./build \
    --exclude='*.egg-info' --exclude=./.pytest_cache --exclude=./image/out --exclude=./image/.cache \
    -cf - . \
    | tar -C "$src" -xf -

unshare --net --mount --propagation private -- bash -euo pipefail -c '
root=$1 wheels=$2 extras=$3
ip link set lo up
mount --bind -o ro "$wheels" "$root/tmp/wheels"
exec chroot "$root" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb PIP_NO_INDEX=1 PIP_FIND_LINKS=/tmp/wheels \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 SIPASSIST_EXTRAS="$extras" \
    /tmp/sipassist-src/install.sh
' install "$root" "$wheels" "$extras"
rm -rf "$src" "$root/tmp/wheels"
echo "image: sipassist installed by install.sh (extras $extras)"
