#!/usr/bin/env bash
# Builds cgrad and runs the main example: the seed tour of
# nn.ConvTranspose3d, every step printed beside the Python line it mirrors.
# Installs the build tools it needs first if they are missing.
# Usage: tools/demo.sh [build-dir]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
build=${1:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target seed_tour >/dev/null
"$build/examples/seed_tour"
