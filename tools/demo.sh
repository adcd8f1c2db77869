#!/usr/bin/env bash
# Builds cgrad and runs an example. Installs the build tools it needs first
# if they are missing.
#
# Usage: tools/demo.sh [example [args...]]
#   tools/demo.sh                  the main example: examples/train_upsampler
#                                  (a 3-D denoiser trained with AdamW and a
#                                  cosine schedule, about a minute on 2 cores;
#                                  writes upsampler_out/loss.svg, slices.pgm,
#                                  model.safetensors)
#   tools/demo.sh seed_tour        the nn.ConvTranspose3d tour, every step
#                                  printed beside the Python line it mirrors
#   tools/demo.sh mlp_classifier   Linear + ReLU + CrossEntropyLoss on spirals
# The build goes to $CGRAD_BUILD (default: build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
build=${CGRAD_BUILD:-build}
example=${1:-train_upsampler}
[ $# -gt 0 ] && shift
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target "$example" >/dev/null
"$build/examples/$example" "$@"
