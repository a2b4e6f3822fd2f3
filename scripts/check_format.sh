#!/usr/bin/env bash
# Fails when any C++/CUDA file we track differs from .clang-format (run clang-format -i to fix).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' | xargs clang-format --dry-run -Werror
echo "check_format.sh: $(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' | wc -l) files formatted"
