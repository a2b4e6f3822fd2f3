#!/usr/bin/env bash
# The GPU call's carry as one xz-compressed tar, for when the uncompressed folders pass the device
# tool's 64 MiB carry limit (the nvJPEG library, a second YOLO fixture and the Florence-2 bench
# together do; shared libraries and the benchmark binaries compress about 3:1, TorchScript weights
# hardly at all).
#   tools/gpu/pack_carry.sh [PATH...]     here, after tools/gpu/prepare_carry.sh: packs the PATHs
#                                         (default: .gpu-deps .f2-bench, and .pyref where it exists)
#                                         into .gpu-pack/carry.tar.xz and prints its size
#   tools/gpu/pack_carry.sh --unpack      there, first in the device command: unpacks it in place
#   run: command "tools/gpu/pack_carry.sh --unpack && tools/gpu/run_all.sh", carry [".gpu-pack"]
set -euo pipefail
cd "$(dirname "$0")/../.."
pack=.gpu-pack/carry.tar.xz
if [[ "${1:-}" == --unpack ]]; then
  [[ -f "$pack" ]] || { echo "pack_carry.sh: no $pack (carry .gpu-pack)" >&2; exit 1; }
  tar -xJf "$pack"
  exit 0
fi
paths=("$@")
if (( ${#paths[@]} == 0 )); then
  paths=(.gpu-deps .f2-bench)
  [[ -d .pyref ]] && paths+=(.pyref)
fi
for path in "${paths[@]}"; do [[ -e "$path" ]] || { echo "pack_carry.sh: no $path" >&2; exit 1; }; done
mkdir -p .gpu-pack
rm -f .gpu-pack/*
tar -cf - "${paths[@]}" | xz -6 -T0 >"$pack"
echo "$pack: $(du -m "$pack" | cut -f1) MiB from ${paths[*]} ($(du -scm "${paths[@]}" | tail -1 | cut -f1) MiB unpacked)"
