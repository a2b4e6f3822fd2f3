#!/usr/bin/env bash
# Configures and builds with a preset (default: auto, CUDA kernels when nvcc and CUDA libtorch exist).
#   scripts/build.sh [PRESET] [TARGET...]
# Prints nothing when everything is up to date (scripts/run.sh calls it before every command).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset="${1:-${VLM_PRESET:-auto}}"
shift || true
# Configure once; after that the build re-runs CMake itself when a CMakeLists.txt changes (remove
# build/PRESET to start over with changed preset variables).
if [[ ! -f "$root/build/$preset/build.ninja" ]]; then
  cmake --preset "$preset" -S "$root" >/dev/null || { echo "build.sh: cmake configure failed (preset $preset)" >&2; exit 1; }
fi
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build "$root/build/$preset" -j "${VLM_BUILD_JOBS:-$(nproc)}" "${targets[@]}" | { grep -v '^ninja: no work to do\.$' || true; }
