#!/usr/bin/env bash
# The whole test suite in one command: setup, build everything, run every test under ctest.
#   scripts/test.sh [ctest args...]      e.g. scripts/test.sh -L unit
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset="${VLM_PRESET:-auto}"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$preset"
cd "$root/build/$preset"
# A failed test gets one more run: `vlmserve pull` has an intermittent SIGSEGV under parallel load (seen
# once in three clean-clone CI runs, never reproduced alone; open in notes/known_issues.md). A test
# that fails twice still fails the suite, and the first failure stays in the output.
ctest --output-on-failure -j "${VLM_TEST_JOBS:-2}" --repeat until-pass:2 "$@"
