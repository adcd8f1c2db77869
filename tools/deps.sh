#!/usr/bin/env bash
# Installs what building and testing cgrad needs on Debian/Ubuntu, when it
# is missing: Check (the test framework), pkg-config, Open MPI (for
# cgrad_distributed) and clang's sanitizer runtime. Uses sudo when not run
# as root. Does nothing when all is there.
set -euo pipefail
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists check 2>/dev/null || missing+=(check)
# MPI for cgrad_distributed and its tests (Open MPI, Debian's packages)
command -v mpicc >/dev/null 2>&1 || missing+=(libopenmpi-dev)
command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin)
if [ "${CGRAD_NEED_CLANG_RT:-0}" = 1 ] &&
   ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.asan-x86_64.a >/dev/null 2>&1; then
  missing+=(libclang-rt-dev)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
