#!/usr/bin/env bash
# The Florence-2 benchmark (bench/florence2/run.py) on the GPU machine in one device call, from the
# repo root. tools/gpu/prepare_carry.sh makes what it needs: the libraries and photos in .gpu-deps/,
# bench_florence2 and the Florence-2 config/tokenizer files the checkpoint builder reads in
# .f2-bench/ (the YOLO fixtures in .gpu-deps/fixtures stay behind). transformers is the
# pinned one when its wheel is carried in .whl/ (tools/gpu/prepare_carry.sh --florence2-reference-only
# fetches it; the machine's own tokenizers, huggingface_hub and safetensors satisfy it), otherwise the
# machine's own, whose version heads the table.
#   run: command "tools/gpu/florence2_bench.sh",
#        carry [".gpu-deps/bin", ".gpu-deps/lib", ".gpu-deps/assets", ".f2-bench", ".whl"], timeout_s 600
# Extra arguments go to run.py (--shapes, --dtypes, --batches, --settings, --budget-s, ...). The table
# and every row's JSON lines land in $OUT (florence2_bench.txt, florence2_bench.jsonl).
# With VLM_GPU_SERVER_SECONDS=N (N s per point), the server rows follow, on the base-shaped checkpoint
# run.py built: the bundle's vlmserve answering POST /detect <CAPTION> (3 beams, 64 new tokens, fp16)
# at 1 and 16 clients beside transformers in a loop (bench/florence2/server.py; florence2_server.txt).
# With VLM_GPU_PROFILE=1, the decode step profile follows the table (florence2_profile.txt): on the
# base-shaped checkpoint run.py built, fp16, batch 1, greedy and <OD> with 3 beams, 128 cached
# positions, bench_florence2 --profile 50 (its kernels, launches and decoder parts with the graph
# replayed and eager; estimated at 10-20 s each on an H100: 60 s of the budget are kept for it).
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
bundle="$PWD/.gpu-deps"
f2="$PWD/.f2-bench"
out="${OUT:-build-gpu/out}"
mkdir -p "$out"
[[ -x "$f2/bin/bench_florence2" && -d "$bundle/lib" ]] || { echo "florence2_bench.sh: no $f2/bin/bench_florence2 or $bundle/lib; build with scripts/build.sh auto, run tools/gpu/prepare_carry.sh and carry both" >&2; exit 1; }
if compgen -G ".whl/transformers-*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/transformers-*.whl || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
torch_dir="$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')" || exit 1
nvidia_dirs="$(ls -d "$torch_dir"/../nvidia/*/lib 2>/dev/null | xargs -r -n1 realpath | paste -sd:)"
# Only the benchmark binary sees the bundle's libraries: python3 keeps the machine's own.
lib_path="$bundle/lib:$torch_dir/lib${nvidia_dirs:+:$nvidia_dirs}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
profile=$([[ "${VLM_GPU_PROFILE:-0}" != 0 ]] && echo 1 || echo 0)
profile_reserve_s=$(( profile * 60 ))
budget=$(( ${VLM_GPU_BUDGET_S:-570} - profile_reserve_s - ($(date +%s) - start) ))
# The 230M/770M-parameter checkpoints stay out of $OUT.
VLM_ASSETS="$f2/assets" PYTHONUNBUFFERED=1 python3 bench/florence2/run.py \
  --bench "$f2/bin/bench_florence2" --bench-env "$lib_path" --images "$bundle/assets/images" \
  --work /tmp/florence2_bench --device cuda --budget-s "$budget" --jsonl "$out/florence2_bench.jsonl" "$@" \
  2> >(grep -v "Loading weights\|Writing model" >&2) | tee "$out/florence2_bench.txt"
status="${PIPESTATUS[0]}"
if [[ "$profile" == 1 ]]; then
  if [[ -d /tmp/florence2_bench/base_native ]]; then
    for beams in 1 3; do
      left=$(( ${VLM_GPU_BUDGET_S:-570} - ($(date +%s) - start) ))
      (( left >= 10 )) || { echo "florence2_bench.sh: no time left for the profile with $beams beam(s)" >&2; status=1; break; }
      LD_LIBRARY_PATH="$lib_path" timeout "$left" \
        "$f2/bin/bench_florence2" --model /tmp/florence2_bench/base_native --images "$bundle/assets/images/dog.jpg" \
        --device cuda --dtype fp16 --batch 1 --num-beams "$beams" --mode decoder-step --cache-length 128 --profile 50 \
        2> >(grep -v "Loading weights" >&2) | tee -a "$out/florence2_profile.txt"
      [[ "${PIPESTATUS[0]}" == 0 ]] || status=1
    done
  else
    echo "florence2_bench.sh: no base-shaped checkpoint for the profile (run.py --shapes base)" >&2
    status=1
  fi
fi
if [[ -n "${VLM_GPU_SERVER_SECONDS:-}" ]]; then
  [[ -d /tmp/florence2_bench/base_native ]] || { echo "florence2_bench.sh: no base-shaped checkpoint (run.py --shapes base)" >&2; exit 1; }
  PYTHONUNBUFFERED=1 timeout "$(( ${VLM_GPU_BUDGET_S:-570} - ($(date +%s) - start) ))" python3 bench/florence2/server.py \
    --bin "$bundle/bin/vlmserve" --bin-env "$lib_path" --model /tmp/florence2_bench/base_native --images "$bundle/assets/images" \
    --device cuda --half --seconds "$VLM_GPU_SERVER_SECONDS" --jsonl "$out/florence2_server.jsonl" \
    2> >(grep -v "Loading weights" >&2) | tee "$out/florence2_server.txt"
  [[ "${PIPESTATUS[0]}" == 0 ]] || status=1
fi
exit "$status"
