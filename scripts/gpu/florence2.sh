#!/usr/bin/env bash
# Florence-2 ids on the GPU machine in one call: vlmserve detect (fp32, fp16 flash and eager) against
# transformers on a Florence-2-base-shaped random checkpoint, every photo (timings: florence2_bench.sh).
# Needs the CUDA vlmserve bundle from scripts/gpu/prepare_carry.sh (carry .gpu-deps), with
# .f2-gpu/ (ignored; carry it too) holding florence2/{onnx-community-Florence-2-base,Florence-2-base}
# config and tokenizer files and images/dog.jpg from ../shared/assets.
#   scripts/gpu/florence2.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
bundle="${VLM_GPU_BUNDLE:-.gpu-deps}"
python="${VLM_GPU_PYTHON:-python3}"
torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')" || exit 1
export LD_LIBRARY_PATH="$PWD/$bundle/lib:$torch_lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
work=/tmp/florence2  # the 230M checkpoint stays out of $OUT
mkdir -p "$work"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
PYTHONUNBUFFERED=1 "$python" scripts/gpu/florence2_reference.py --vlmserve "$bundle/bin/vlmserve" \
  --assets "${VLM_GPU_FLORENCE2_ASSETS:-.f2-gpu}" --work "$work" --device cuda "$@"
