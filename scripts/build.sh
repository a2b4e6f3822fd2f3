#!/usr/bin/env bash
# Configures and builds with a preset (default: auto, CUDA kernels when nvcc and CUDA libtorch exist).
#   scripts/build.sh [PRESET] [TARGET...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset="${1:-${VLM_PRESET:-auto}}"
shift || true
cmake --preset "$preset" -S "$root" >/dev/null || { echo "build.sh: cmake configure failed (preset $preset)" >&2; exit 1; }
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build "$root/build/$preset" -j "${VLM_BUILD_JOBS:-$(nproc)}" "${targets[@]}"
