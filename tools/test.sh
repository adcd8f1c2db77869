#!/usr/bin/env bash
# Builds cgrad with every warning as an error and runs the whole test suite
# (the README's test command). Installs Check and pkg-config first if they
# are missing. Usage: tools/test.sh [build-dir]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
build=${1:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCGRAD_WERROR=ON
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
