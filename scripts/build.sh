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
# A dry run first, so that an up-to-date tree prints nothing while a real build keeps ninja's own
# terminal output (piping it through a filter would turn its one status line into hundreds).
dry_run="$(cmake --build "$root/build/$preset" "${targets[@]}" -- -n 2>/dev/null || true)"
[[ "$dry_run" == "ninja: no work to do." ]] && exit 0
cmake --build "$root/build/$preset" -j "${VLM_BUILD_JOBS:-$(nproc)}" "${targets[@]}"
