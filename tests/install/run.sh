#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds a tiny program
# against it twice: with CMake's find_package(cgrad) (cgrad::cgrad) and
# with pkg-config. Both must compile, link and print the expected tensor.
# Usage: run.sh <build-dir> <c-compiler> [sanitizers]
set -euo pipefail
build=$1 cc=$2 san=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=""
[ -n "$san" ] && flags="-fsanitize=$san"

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
expected='tensor([[ 0.3367,  0.1288,  0.2345],
        [ 0.2303, -1.1229, -0.1863]])'

cmake -S "$here/consumer" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
out=$("$tmp/cmake-build/consumer")
[ "$out" = "$expected" ] || { echo "find_package consumer printed:"; echo "$out"; exit 1; }
echo "find_package(cgrad): ok"

pcdir=$(dirname "$(find "$tmp/prefix" -name cgrad.pc | head -n 1)")
libdir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir cgrad)
# shellcheck disable=SC2046
"$cc" $flags -std=c11 "$here/consumer/main.c" -o "$tmp/pc-consumer" \
  $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs cgrad) -Wl,-rpath,"$libdir"
out=$("$tmp/pc-consumer")
[ "$out" = "$expected" ] || { echo "pkg-config consumer printed:"; echo "$out"; exit 1; }
echo "pkg-config cgrad: ok"
