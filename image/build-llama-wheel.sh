#!/usr/bin/env bash
# Cross-compile the llama-cpp-python wheel for arm64 on this (x86_64) host, once per version.
#
#   image/build-llama-wheel.sh [CACHE_DIR]     (default /var/cache/sipassist-image)
#
# PyPI has no aarch64 wheel of llama-cpp-python and compiling llama.cpp under qemu-user
# emulation takes over an hour on 2 cores. The Python side is pure ctypes: only the shared
# libraries (libllama, libggml*) are architecture-specific, so they are built with Debian's
# aarch64 cross compiler (same gcc 12 / glibc 2.36 as the image) and the wheel is tagged
# linux_aarch64. The result is kept in CACHE_DIR/wheels-arm64/, keyed by the version pinned in
# pyproject.toml, and a second run returns at once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cache=${1:-${SIPASSIST_IMAGE_CACHE:-/var/cache/sipassist-image}}
fail() { echo "build-llama-wheel: error: $*" >&2; exit 1; }

version=$(sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' "$repo/pyproject.toml" | head -n1)
[ -n "$version" ] || fail "no llama-cpp-python==X pin found in $repo/pyproject.toml"
out=$cache/wheels-arm64
wheel=$out/llama_cpp_python-$version-py3-none-linux_aarch64.whl
if [ -f "$wheel" ]; then
    echo "build-llama-wheel: cached $wheel"
    exit 0
fi
for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ cmake python3; do
    command -v "$tool" >/dev/null \
        || fail "$tool is missing: apt-get install g++-aarch64-linux-gnu cmake python3-venv"
done

work=$(mktemp -d /tmp/sipassist-llama.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$cache/src"
sdist=$cache/src/llama_cpp_python-$version.tar.gz
if [ ! -f "$sdist" ]; then
    # --no-binary: the source distribution, never this host's x86_64 wheel from a cache.
    python3 -m pip download -q --no-deps --no-binary :all: -d "$work/dl" "llama-cpp-python==$version" \
        || fail "could not download llama-cpp-python $version from PyPI"
    mv "$work"/dl/llama_cpp_python-"$version".tar.gz "$sdist"
fi

# A private build venv: scikit-build-core builds the wheel, 'wheel' retags it.
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "scikit-build-core>=0.9.2" wheel \
    || fail "could not install scikit-build-core and wheel from PyPI"

# GGML_NATIVE=OFF: no -march=native (this host's CPU is not the Pi's). The multimodal library
# (LLAVA_BUILD) is left out: sipassist only chats, and llama_cpp loads it lazily.
export CMAKE_ARGS="-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
-DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
-DCMAKE_FIND_ROOT_PATH=/usr/aarch64-linux-gnu -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
# The wheel's platform tag comes from sysconfig, which honours this override.
export _PYTHON_HOST_PLATFORM=linux-aarch64
started=$(date +%s)
"$work/venv/bin/pip" wheel -q --no-deps --no-build-isolation -w "$work/dist" "$sdist" \
    || fail "the cross build failed (see above)"
built=$(ls "$work"/dist/llama_cpp_python-"$version"-*.whl)
case "$built" in
    *linux_aarch64.whl) ;;
    *) "$work/venv/bin/python" -m wheel tags --remove --platform-tag linux_aarch64 "$built" >/dev/null
       built=$(ls "$work"/dist/llama_cpp_python-"$version"-*linux_aarch64.whl) ;;
esac

# Refuse a wheel whose libraries are not arm64 (a silently native build would crash on the Pi).
mkdir "$work/check"
(cd "$work/check" && "$work/venv/bin/python" -m zipfile -e "$built" .)
libllama=$(find "$work/check" -name 'libllama.so*' -type f | head -n1)
[ -n "$libllama" ] || fail "the wheel has no libllama.so"
file -L "$libllama" | grep -q 'ARM aarch64' || fail "$libllama is not an aarch64 library: $(file -L "$libllama")"

mv "$built" "$wheel.tmp"
mv "$wheel.tmp" "$wheel"
echo "build-llama-wheel: built $wheel in $(( $(date +%s) - started )) s"
