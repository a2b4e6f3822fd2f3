#!/usr/bin/env bash
# Florence-2 on CUDA against transformers in one device call, from the repo root: builds the tiny
# fixtures there (tests/parity/florence2_make_fixtures.py with the carried transformers wheel; their
# 100 MB do not travel), then runs florence2_parity_test's Florence2Cuda cases: the CUDA-graphed
# decoder under per-request generation settings, its ids and token log-probs against transformers'.
# tools/gpu/prepare_carry.sh puts florence2_parity_test in .f2-bench/bin and the wheel in .whl
# (--florence2-reference-only).
#   run: command "tools/gpu/florence2_parity.sh",
#        carry [".gpu-deps/bin", ".gpu-deps/lib", ".gpu-deps/assets", ".f2-bench", ".whl"], timeout_s 600
set -uo pipefail
cd "$(dirname "$0")/../.."
bundle="$PWD/.gpu-deps"
f2="$PWD/.f2-bench"
out="${OUT:-build-gpu/out}"
mkdir -p "$out"
[[ -x "$f2/bin/florence2_parity_test" ]] || { echo "florence2_parity.sh: no $f2/bin/florence2_parity_test; run tools/gpu/prepare_carry.sh" >&2; exit 1; }
if compgen -G ".whl/transformers-*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/transformers-*.whl || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# The fixture builder reads florence2/ and images/ under one assets folder.
assets=/tmp/florence2_assets
mkdir -p "$assets"
ln -sfn "$f2/assets/florence2" "$assets/florence2"
ln -sfn "$bundle/assets/images" "$assets/images"
data=/tmp/florence2_test_data
torch_dir="$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')" || exit 1
nvidia_dirs="$(ls -d "$torch_dir"/../nvidia/*/lib 2>/dev/null | xargs -r -n1 realpath | paste -sd:)"
lib_path="$bundle/lib:$torch_dir/lib${nvidia_dirs:+:$nvidia_dirs}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

echo "== fixtures (transformers $(python3 -c 'import transformers; print(transformers.__version__)'))"
VLM_ASSETS="$assets" VLM_TEST_DATA="$data" python3 tests/parity/florence2_make_fixtures.py >"$out/fixtures.log" 2>&1 ||
  { tail -30 "$out/fixtures.log"; exit 1; }
echo "== florence2_parity_test --gtest_filter=Florence2Cuda.*"
VLM_ASSETS="$assets" VLM_TEST_DATA="$data" LD_LIBRARY_PATH="$lib_path" \
  "$f2/bin/florence2_parity_test" --gtest_filter='Florence2Cuda.*' 2>&1 | tee "$out/florence2_parity_cuda.log"
exit "${PIPESTATUS[0]}"
