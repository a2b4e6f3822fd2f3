#!/usr/bin/env bash
# Flash-attention on the GPU machine, one call: build (or reuse a prebuilt build carried along),
# resource report, correctness sweep, compute-sanitizer memcheck + racecheck, benchmark table.
#   tools/gpu/attention.sh [--tune] [--skip-check] [--skip-sanitizer]
# Needs only nvcc 13, cmake, ninja and python3 with the torch 2.11 wheel (tests/gpu/CMakeLists.txt).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-build/flash-gpu-out}"
mkdir -p "$out"
tune=""; check=1; sanitize=1
for arg in "$@"; do
  case "$arg" in
    --tune) tune="--tune" ;;
    --skip-check) check=0 ;;
    --skip-sanitizer) sanitize=0 ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done
python="${VLM_GPU_PYTHON:-python3}"
torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')" || exit 1
export LD_LIBRARY_PATH="$torch_lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export PATH="/usr/local/cuda/bin:$PATH"
nvidia-smi --query-gpu=name,compute_cap,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader

build="${VLM_FLASH_BUILD:-build-flash-gpu}"
if ! [ -x "$build/flash_attention_check" ] || ldd "$build/flash_attention_check" | grep -q "not found"; then
  build=build/flash-gpu
  cmake -S tests/gpu -B "$build" -G Ninja -DVLM_GPU_PYTHON="$(command -v "$python")" >"$out/configure.log" 2>&1 \
    || { tail -30 "$out/configure.log"; exit 1; }
  start=$(date +%s)
  cmake --build "$build" -j"$(nproc)" 2>&1 | tee "$out/build.log" | grep -E "error|spill|FAILED" || true
  echo "build: $(( $(date +%s) - start )) s"
fi
status=0
if command -v cuobjdump >/dev/null; then
  cuobjdump --dump-resource-usage "$build/flash_attention_check" 2>/dev/null | c++filt >"$out/resources.txt"
  echo "== kernel resources (fp16; bf16 identical shapes), from cuobjdump --dump-resource-usage"
  grep -A1 "Function" "$out/resources.txt" | grep -v "^--" | paste - - | grep -v bfloat |
    sed -E 's/.*FlashTraits<([0-9]+), __half>, (true|false)>.*REG:([0-9]+) STACK:([0-9]+) SHARED:([0-9]+) LOCAL:([0-9]+).*/config \1 split=\2 REG \3 STACK \4 LOCAL(spill) \6/;
            s/.*flash_combine_kernel<([0-9]+), __half>.*REG:([0-9]+).*/combine d\1 REG \2/' | grep -E "^(config|combine)" | sort -u
fi
if [ "$check" = 1 ]; then
  echo "== correctness: $build/flash_attention_check"
  "$build/flash_attention_check" 2>&1 | tee "$out/check.log" | tail -40; [ "${PIPESTATUS[0]}" = 0 ] || status=1
  if true; then
    # Every row of the table, forced, over its head dim's sweep: the autotuner may pick any shipped
    # row for a shape, and a tuning candidate must be correct before its timings mean anything.
    for config in $(seq 0 63); do
      "$build/flash_attention_check" --config "$config" >"$out/check_config_$config.log" 2>&1
      rc=$?
      [ "$rc" = 2 ] && grep -q "is not built" "$out/check_config_$config.log" && break
      echo "config $config: $(head -1 "$out/check_config_$config.log" | sed 's/^forcing //') -> $(tail -1 "$out/check_config_$config.log")"
      [ "$rc" = 0 ] || { status=1; grep FAIL "$out/check_config_$config.log" | head -5; }
    done
  fi
fi
if [ "$sanitize" = 1 ]; then
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer --tool $tool $build/flash_attention_check --small"
    timeout 240 compute-sanitizer --tool "$tool" --error-exitcode 9 "$build/flash_attention_check" --small \
      >"$out/sanitizer_$tool.log" 2>&1
    rc=$?
    tail -4 "$out/sanitizer_$tool.log"
    [ "$rc" = 0 ] || { echo "compute-sanitizer $tool exit $rc"; status=1; }
  done
fi
echo "== benchmark: $build/flash_attention_bench $tune"
"$build/flash_attention_bench" $tune 2>&1 | tee "$out/bench.log" | grep -v "^    tune" | tail -25
[ -n "$tune" ] && grep "^    tune" "$out/bench.log"
exit $status
