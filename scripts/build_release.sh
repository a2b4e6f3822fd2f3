#!/usr/bin/env bash
# Builds the vlmserve binary only (no tests) with a CMake preset: what the Docker image builds, and
# what CI runs through tests/deploy so a broken step is caught without a Docker engine.
#   scripts/build_release.sh [cpu|cuda|auto] [BUILD_DIR]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset="${1:-auto}"
build_dir="${2:-$root/build/release-$preset}"
case "$preset" in
  cpu|cuda|auto) ;;
  *) echo "build_release.sh: preset must be cpu, cuda or auto, got '$preset'" >&2; exit 2 ;;
esac

cmake -S "$root" --preset "$preset" -B "$build_dir" -DVLM_BUILD_TESTS=OFF
cmake --build "$build_dir" --target vlmserve -j "${VLM_BUILD_JOBS:-$(nproc)}"
echo "built $build_dir/cli/vlmserve"
