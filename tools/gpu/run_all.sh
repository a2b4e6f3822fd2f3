#!/usr/bin/env bash
# The GPU machine's whole check in one device call, from the repo root, with .gpu-deps/ carried
# (made here by tools/gpu/prepare_carry.sh: the GPU machine has no OpenCV/spdlog/fmt and no apt, so
# vlmserve is built on Debian 12 with the auto preset and travels with its libraries):
#   1. vlmserve --version: CUDA devices >= 1 and flash among the attention backends
#   2. YOLO parity with --device cuda, fp32: tests/parity/test_yolo_parity.py at the CPU tolerances
#      (same count and classes, boxes within 1 px, scores within 1e-3)
#   3. the same in fp16 (--half): tests/gpu/test_yolo_parity_fp16.py, boxes within 2 px, scores within
#      1e-2, detections within 1e-2 of the confidence threshold allowed to flip (listed)
#   3b. tests/gpu/test_yolo_graphs.py: the forward pass replayed as CUDA graphs against the eager pass
#      (same detections to 1e-3 px / 1e-5), with both per-image inference times
#   4. letterbox_batch_check: the YOLO input letterboxed on the device against OpenCV's, byte for
#      byte, and both timed; nvjpeg_decode_check: nvJPEG batched decoding against OpenCV's (mean abs
#      <= 2 levels per image, CMYK and progressive left to the CPU) and both decode rates;
#      add_layer_norm_check: the fused residual + LayerNorm kernel against at::layer_norm(x + y);
#      greedy_select_check: Florence-2's greedy step kernel against the ATen ops it replaces;
#      linear_check: the few-rows linear kernel (decode-step projections) against at::linear;
#      flash_attention_check: the flash and decode attention kernels against fp32 eager attention
#   4b. tests/gpu/test_server_nvjpeg.py: vlmserve serve --image-decoder auto (nvJPEG) against cpu
#      (OpenCV) on the yolov5n fixture over HTTP: same detections (2 px, 1e-2), same error codes
#   1b. where .f2-bench is carried: tools/gpu/florence2_parity.sh (Florence-2's CUDA-graphed decoder
#      against transformers; needs .whl too)
#   4c. with VLM_GPU_FIRST_PASS=1, bench/yolo/first_pass.py; the server benchmark cases
#      (VLM_GPU_BENCH_CASES, below)
#   4d. with VLM_GPU_FLORENCE2_BENCH="ARGS": tools/gpu/florence2_bench.sh ARGS (VLM_GPU_PROFILE=1 adds
#      the decode-step profile); its tables come back as florence2_bench.txt and florence2_profile.txt
#   5. tools/gpu/attention.sh --skip-sanitizer (flash kernels: build, check, benchmark) with the time
#      left in the call's 10 minutes
# Every step is bounded by what is left of VLM_GPU_BUDGET_S (570 s). Logs go to $OUT (logs.tar.gz,
# summary.txt and the Florence-2 tables: at most four files of the 8 that come back).
#   run: command "tools/gpu/run_all.sh", carry [".gpu-deps"], timeout_s 600
#   everything, packed: command "tools/gpu/pack_carry.sh --unpack && tools/gpu/run_all.sh",
#        carry [".gpu-pack", ".whl"]
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
budget_s="${VLM_GPU_BUDGET_S:-570}"
out="${OUT:-build-gpu/out}"
mkdir -p "$out"
logs="$(mktemp -d)"
bundle="$PWD/.gpu-deps"
summary=()
status=0
note() { summary+=("$(printf '%-34s %-5s %s' "$1" "$2" "$3")"); [[ "$2" == FAIL ]] && status=1; }
# The seconds a step may take: its own limit, or what is left of VLM_GPU_BUDGET_S if that is less, so
# that a short call still ends with its summary and logs.
step_limit() {
  local left=$(( budget_s - ($(date +%s) - start) - 5 ))
  (( left < $1 )) && echo "$(( left > 1 ? left : 1 ))" || echo "$1"
}

[[ -x "$bundle/bin/vlmserve" ]] || { echo "run_all.sh: no $bundle/bin/vlmserve; run tools/gpu/prepare_carry.sh and carry .gpu-deps" >&2; exit 1; }

torch_dir=/opt/torch/.venv/lib/python3.12/site-packages/torch
if [[ -d "$torch_dir/lib" ]]; then
  echo "torch libraries: $torch_dir/lib (the expected path)"
else
  torch_dir="$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')" || exit 1
  echo "torch libraries: $torch_dir/lib (located through python3; not the expected path)"
fi
nvidia_dirs="$(ls -d "$torch_dir"/../nvidia/*/lib 2>/dev/null | xargs -r -n1 realpath | paste -sd:)"
lib_path="$bundle/lib:$torch_dir/lib${nvidia_dirs:+:$nvidia_dirs}"
python3 -c 'import torch; print("python3 torch", torch.__version__, "| GPU:", torch.cuda.get_device_name(0))'
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader

# Only vlmserve sees the bundle's libraries: python3 keeps the machine's own libz/libssl/liblzma.
wrapper="$logs/vlmserve"
printf '#!/bin/sh\nLD_LIBRARY_PATH=%q exec %q "$@"\n' "$lib_path" "$bundle/bin/vlmserve" >"$wrapper"
chmod +x "$wrapper"
export VLM_BIN="$wrapper" VLM_ASSETS="$bundle/assets"
if LD_LIBRARY_PATH="$lib_path" ldd "$bundle/bin/vlmserve" | grep "not found"; then
  note "bundle libraries" FAIL "ldd: libraries not found (above)"
fi

echo "== vlmserve --version"
"$VLM_BIN" --version 2>&1 | tee "$logs/version.json"
version_check="$(python3 - "$logs/version.json" <<'EOF'
import json, sys
try:
    v = json.load(open(sys.argv[1]))
except ValueError as e:
    print(f"FAIL not JSON ({e})"); sys.exit()
ok = v["cuda"]["compiled"] and v["cuda"]["devices"] >= 1 and "flash" in v["attention_backends"]
print(("PASS" if ok else "FAIL") + f" CUDA devices {v['cuda']['devices']} (runtime {v['cuda']['runtime']}), "
      f"backends {','.join(v['attention_backends'])}, libtorch {v['libtorch']}")
EOF
)"
note "vlmserve --version" "${version_check%% *}" "${version_check#* }"

if [[ "${VLM_GPU_SKIP_FLORENCE2:-0}" != 1 && -x .f2-bench/bin/florence2_parity_test ]]; then
  echo "== Florence-2 on CUDA against transformers (tools/gpu/florence2_parity.sh)"
  t0=$(date +%s)
  OUT="$logs/florence2_parity" timeout "$(step_limit 200)" tools/gpu/florence2_parity.sh >"$logs/florence2_parity.log" 2>&1
  rc=$?
  grep -E '^\[ +(OK|FAILED|SKIPPED|PASSED) |margin' "$logs/florence2_parity.log" | head -40
  note "florence2 parity cuda" "$([[ $rc == 0 ]] && echo PASS || echo FAIL)" \
    "$(grep -c '^\[       OK ' "$logs/florence2_parity.log") cases OK, $(grep -c '^\[  FAILED  ] Florence' "$logs/florence2_parity.log") failed, exit $rc [$(( $(date +%s) - t0 )) s]"
else
  note "florence2 parity cuda" SKIP "VLM_GPU_SKIP_FLORENCE2=1 or .f2-bench not carried"
fi

# One carried check binary, run with its arguments: PASS or FAIL from its exit status; the detail is
# how many PASS lines it printed (counted as `unit`; none when unit is empty) and its summary line
# (the one matching `pattern`, `strip` removed).
run_check() {
  local name="$1" what="$2" unit="$3" pattern="$4" strip="$5" missing="$6"
  shift 6
  echo "== $name ($what)"
  if [[ ! -x "$bundle/bin/$name" ]]; then
    note "$name" SKIP "$missing"
    return
  fi
  LD_LIBRARY_PATH="$lib_path" timeout "$(step_limit 240)" "$bundle/bin/$name" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  cat "$logs/$name.log"
  local count=""
  [[ -n "$unit" ]] && count="$(grep -c '^PASS' "$logs/$name.log") $unit; "
  note "$name" "$([[ $rc == 0 ]] && echo PASS || echo FAIL)" \
    "$count$(grep -E "$pattern" "$logs/$name.log" | sed "s/$strip//" | paste -sd";" -)"
}
run_check letterbox_batch_check "device letterbox against OpenCV" cases '^time: batch 8' '^time: ' \
  "not carried (build it: scripts/build.sh auto letterbox_batch_check)" "$VLM_ASSETS/images"
run_check nvjpeg_decode_check "nvJPEG batched decoding against OpenCV" images '^decode rate' '^decode rate: ' \
  "not carried (a build without nvJPEG)" "$VLM_ASSETS/images" "$VLM_ASSETS/jpeg_variants"
run_check add_layer_norm_check "fused residual + LayerNorm against at::layer_norm(x + y)" cases '^time: ' '^time: ' \
  "not carried (build it: scripts/build.sh auto add_layer_norm_check)"
run_check greedy_select_check "Florence-2's greedy step kernel against its ATen ops" cases '^time: ' '^time: ' \
  "not carried (build it: scripts/build.sh auto greedy_select_check)"
run_check linear_check "the few-rows linear kernel against at::linear" cases '^time: base QKV +1 ' '^time: ' \
  "not carried (build it: scripts/build.sh auto linear_check)"
# The main build's flash_attention_check: the flash and decode kernels this vlmserve carries against
# fp32 eager attention, its default sweep (attention.sh below builds its own, and adds the sanitizers,
# the per-config sweeps and the benchmark).
run_check flash_attention_check "flash and decode attention against fp32 eager attention" "" \
  '^flash_attention_check: ' '^flash_attention_check: ' "not carried (build it: scripts/build.sh auto flash_attention_check)"

# check_step TITLE NAME LIMIT_S LOG_NAME DETAIL COMMAND...: runs COMMAND within LIMIT_S (or what is left
# of the budget), prints the head of its log and notes PASS or FAIL with `DETAIL LOG` and the time taken.
check_step() {
  local title="$1" name="$2" limit="$3" log="$logs/$4.log" detail="$5" t0 rc
  shift 5
  echo "== $title"
  t0=$(date +%s)
  timeout "$(step_limit "$limit")" "$@" >"$log" 2>&1
  rc=$?
  head -50 "$log"
  note "$name" "$([[ $rc == 0 ]] && echo PASS || echo FAIL)" "$("$detail" "$log") [$(( $(date +%s) - t0 )) s]"
}
# The references name photos by the absolute path they had where prepare_carry.sh ran.
data="$logs/test-data"
mkdir -p "$data"
old_prefix="$(cat "$bundle/fixtures/ASSETS_PREFIX")"
models=()
for model in yolov5n yolov8n yolo11n yolo26n; do
  [[ -f "$bundle/fixtures/$model.torchscript" ]] || { note "yolo parity $model" SKIP "fixture not carried"; continue; }
  ln -s "$bundle/fixtures/$model.torchscript" "$data/$model.torchscript"
  sed "s#\"$old_prefix/#\"$VLM_ASSETS/#g" "$bundle/fixtures/reference_$model.json" >"$data/reference_$model.json"
  models+=("$model")
done
export VLM_TEST_DATA="$data"

if [[ "${VLM_GPU_SKIP_PARITY:-0}" == 1 ]]; then
  note "server nvJPEG vs OpenCV" SKIP "VLM_GPU_SKIP_PARITY=1"
elif [[ -f "$VLM_TEST_DATA/yolov5n.torchscript" && -d "$VLM_ASSETS/jpeg_variants" ]]; then
  nvjpeg_detail() { grep '^nvJPEG against OpenCV' "$1" | sed 's/^[^:]*: //'; }
  check_step "server nvJPEG against OpenCV (yolov5n, cuda fp32)" "server nvJPEG vs OpenCV" 240 server_nvjpeg \
    nvjpeg_detail python3 tests/gpu/test_server_nvjpeg.py "$VLM_ASSETS/images" "$VLM_ASSETS/jpeg_variants"
else
  note "server nvJPEG vs OpenCV" SKIP "no yolov5n fixture or no jpeg_variants carried"
fi

result_line() { grep -E "^$1 on cuda" "$2" | tail -1 | sed -E 's/^[^:]*: //'; }
# VLM_GPU_SKIP_PARITY=1: a call for the benchmark alone (parity and graphs checks ran in another).
# VLM_GPU_PARITY_MODELS="yolov5n ...": only these of the carried fixtures (the benchmark may use more);
# "none": no YOLO parity or graphs check, the server's nvJPEG check still runs.
parity_models=("${models[@]}")
[[ -n "${VLM_GPU_PARITY_MODELS:-}" ]] && read -ra parity_models <<<"${VLM_GPU_PARITY_MODELS/none/}"
[[ "${VLM_GPU_SKIP_PARITY:-0}" == 1 ]] && { parity_models=(); note "yolo parity, graphs" SKIP "VLM_GPU_SKIP_PARITY=1"; }
parity_detail() { result_line "$model" "$1"; }
graphs_detail() { echo "$(grep -c PASS "$1") runs; $(grep -m1 'fp32 batch 1:' "$1" | sed -E 's/.*eager/eager/')"; }
for model in "${parity_models[@]}"; do
  check_step "YOLO parity $model, cuda fp32 (1 px, 1e-3)" "yolo parity $model cuda fp32" 150 "parity_${model}_fp32" \
    parity_detail python3 tests/parity/test_yolo_parity.py "$model" --device cuda
  check_step "YOLO CUDA graphs $model against the eager pass (fp32 and fp16, batches 1 and 4)" \
    "yolo graphs $model cuda" 150 "graphs_$model" graphs_detail python3 tests/gpu/test_yolo_graphs.py "$model"
  if [[ $model != yolov5n ]]; then
    # Random weights turn fp16 rounding into different boxes and scores (hundreds of near-equal,
    # overlapping candidates): only the trained model says something about fp16 accuracy.
    note "yolo parity $model cuda fp16" SKIP "random weights: fp16 checked on the trained yolov5n only"
    continue
  fi
  check_step "YOLO parity $model, cuda fp16 (2 px, 1e-2, threshold flips listed)" "yolo parity $model cuda fp16" 150 \
    "parity_${model}_fp16" parity_detail python3 tests/gpu/test_yolo_parity_fp16.py "$model"
done

# Florence-2 has its own call (tools/gpu/florence2_bench.sh): its checkpoints and reference need the
# whole of one.

# The Python references (yolov5 package, ultralytics predict) need their packages: the GPU machine
# has torch, opencv and their other dependencies but not these two pure-Python packages, which
# travel in .pyref/ (carry it; made by tools/gpu/prepare_carry.sh --python-reference).
reference_args=(--no-reference)
if [[ -d .pyref ]] && PYTHONPATH="$PWD/.pyref" python3 -c "import yolov5.models.common, ultralytics" >"$logs/pyref.log" 2>&1; then
  export PYTHONPATH="$PWD/.pyref${PYTHONPATH:+:$PYTHONPATH}"
  reference_args=()
else
  echo "server benchmark without the Python reference: $(tail -1 "$logs/pyref.log" 2>/dev/null || echo 'no .pyref carried')"
fi
# VLM_GPU_FIRST_PASS=1: the first batch of each size against steady state (bench/yolo/first_pass.py),
# fp32 and fp16, yolov5n on bus.jpg through `vlmserve detect`.
if [[ "${VLM_GPU_FIRST_PASS:-0}" == 1 && -f "$VLM_TEST_DATA/yolov5n.torchscript" ]]; then
  echo "== first batch against steady state (bench/yolo/first_pass.py)"
  t0=$(date +%s)
  rc=0
  for half in "" --half; do
    timeout "$(step_limit 90)" python3 bench/yolo/first_pass.py --model "$VLM_TEST_DATA/yolov5n.torchscript" \
      --photo "$VLM_ASSETS/images/bus.jpg" --batches 1,3,8 ${half:+"$half"} "vlmserve${half:+-fp16}=$VLM_BIN" \
      >>"$logs/first_pass.log" 2>&1 || rc=1
  done
  cat "$logs/first_pass.log"
  note "first pass yolov5n" "$([[ $rc == 0 ]] && echo DONE || echo FAIL)" "see first_pass.log [$(( $(date +%s) - t0 )) s]"
fi

bench_cases=()
# VLM_GPU_BENCH_SECONDS (8) per point, VLM_GPU_BENCH_CLIENTS ("1 8 32") the concurrencies.
# VLM_GPU_BENCH_CASES="yolov8n fp32 ultralytics;..." runs only those (model precision family, then any
# arguments for `vlmserve serve`, e.g. "yolov5n fp32 yolov5 --cuda-graphs=false"). A case that starts
# with "before" serves with .gpu-deps/bin/vlmserve-before (an earlier commit's build, carried by
# prepare_carry.sh with VLM_GPU_BEFORE_BINARY) and skips the Python reference, which the same case
# without "before" runs: "before yolov5n fp32 yolov5".
if [[ -n "${VLM_GPU_BENCH_CASES:-}" ]]; then
  IFS=';' read -ra bench_cases <<<"$VLM_GPU_BENCH_CASES"
elif [[ "${VLM_GPU_SKIP_BENCH:-0}" != 1 ]]; then
  bench_cases=("yolov5n fp32 yolov5" "yolov5n fp16 yolov5" "yolov8n fp32 ultralytics")
fi
# The Python reference runs once per model, precision and family: a later case that serves the same
# model another way (other serve arguments, the "before" build) is read beside the first case's table.
declare -A referenced=()
for case in "${bench_cases[@]}"; do
  bench_bin="$VLM_BIN"
  case_reference_args=("${reference_args[@]}")
  read -r model precision family _ <<<"${case#before }"
  [[ -n "${referenced[$model $precision $family]:-}" ]] && case_reference_args=(--no-reference)
  [[ "$case" == before\ * ]] || referenced[$model $precision $family]=1
  build=""
  if [[ "$case" == before\ * ]]; then
    case="${case#before }"
    build="before"
    case_reference_args=(--no-reference)
    bench_bin="$logs/vlmserve-before"
    [[ -x "$bundle/bin/vlmserve-before" ]] || { note "server bench before $case" SKIP "no vlmserve-before carried"; continue; }
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%q exec %q "$@"\n' "$lib_path" "$bundle/bin/vlmserve-before" >"$bench_bin"
    chmod +x "$bench_bin"
  fi
  read -r model precision family extra <<<"$case"
  serve_args=()
  for arg in $extra; do serve_args+=(--serve-arg "$arg"); done
  tag="${build:+${build}_}${model}_$precision${extra:+_$(echo "$extra" | tr -dc 'a-z0-9=_-')}"
  [[ -f "$VLM_TEST_DATA/$model.torchscript" ]] || { note "server bench $model cuda $precision" SKIP "fixture not carried"; continue; }
  echo "== server benchmark, ${build:+$build: }$model on cuda $precision ${extra:+($extra) }beside the $family reference"
  t0=$(date +%s)
  (( $(step_limit 200) >= 30 )) || { note "server bench ${build:+$build }$model cuda $precision $extra" SKIP "out of VLM_GPU_BUDGET_S"; continue; }
  VLM_PYTHON=python3 timeout "$(step_limit 200)" bench/server/run.sh --bin "$bench_bin" --model "$VLM_TEST_DATA/$model.torchscript" \
    --family "$family" --device cuda $([[ $precision == fp16 ]] && echo --half) --seconds "${VLM_GPU_BENCH_SECONDS:-8}" \
    --clients "${VLM_GPU_BENCH_CLIENTS:-1 8 32}" "${case_reference_args[@]}" \
    "${serve_args[@]}" >"$logs/bench_server_$tag.log" 2>&1
  rc=$?
  tail -8 "$logs/bench_server_$tag.log"
  note "server bench ${build:+$build }$model cuda $precision $extra" "$([[ $rc == 0 ]] && echo DONE || echo FAIL)" "see bench_server_$tag.log [$(( $(date +%s) - t0 )) s]"
done

f2_budget=$(step_limit 570)
# Below 150 s the checkpoint build and the profile's 60 s leave no bench row.
if [[ -n "${VLM_GPU_FLORENCE2_BENCH:-}" ]] && (( f2_budget < 150 )); then
  note "florence2 bench" SKIP "only ${f2_budget} s left (needs 150)"
elif [[ -n "${VLM_GPU_FLORENCE2_BENCH:-}" ]]; then
  echo "== tools/gpu/florence2_bench.sh $VLM_GPU_FLORENCE2_BENCH (${f2_budget} s)"
  t0=$(date +%s)
  # shellcheck disable=SC2086
  OUT="$logs/florence2_bench" VLM_GPU_BUDGET_S=$(( f2_budget - 5 )) timeout "$f2_budget" \
    tools/gpu/florence2_bench.sh $VLM_GPU_FLORENCE2_BENCH >"$logs/florence2_bench.log" 2>&1
  rc=$?
  for table in florence2_bench.txt florence2_profile.txt; do
    [[ -f "$logs/florence2_bench/$table" ]] && cp "$logs/florence2_bench/$table" "$out/"
  done
  tail -20 "$logs/florence2_bench.log"
  note "florence2 bench" "$([[ $rc == 0 ]] && echo DONE || echo FAIL)" "exit $rc, florence2_bench.txt [$(( $(date +%s) - t0 )) s]"
fi

left=$(( budget_s - ($(date +%s) - start) ))
if [[ "${VLM_GPU_SKIP_ATTENTION:-0}" == 1 ]]; then
  note "attention.sh" SKIP "VLM_GPU_SKIP_ATTENTION=1"
elif (( left > 90 )); then
  echo "== tools/gpu/attention.sh (${left} s left)"
  mkdir -p "$logs/attention"
  OUT="$logs/attention" timeout "$left" tools/gpu/attention.sh 2>&1 | tee "$logs/attention.log" | tail -60
  rc=${PIPESTATUS[0]}
  case $rc in
    0) note "attention.sh (check, sanitizers, bench)" PASS "see attention.log" ;;
    124) note "attention.sh" FAIL "out of time after ${left} s" ;;
    *) note "attention.sh" FAIL "exit $rc" ;;
  esac
else
  note "attention.sh" SKIP "only ${left} s left"
fi

{
  echo "== summary ($(( $(date +%s) - start )) s, $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))"
  printf '%s\n' "${summary[@]}"
} | tee "$out/summary.txt"
tar -czf "$out/logs.tar.gz" -C "$logs" --exclude=vlmserve --exclude=test-data . 2>/dev/null
exit $status
