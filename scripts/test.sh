#!/usr/bin/env bash
# The whole test suite in one command: setup, build everything, run every test under ctest.
#   scripts/test.sh [ctest args...]      e.g. scripts/test.sh -L unit
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset="${VLM_PRESET:-auto}"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$preset"
cd "$root/build/$preset"
ctest --output-on-failure -j "${VLM_TEST_JOBS:-2}" "$@"
