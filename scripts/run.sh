#!/usr/bin/env bash
# The main job in one command: setup, build, then `vlmserve ARGS...`.
#   scripts/run.sh detect photos/ --out results.jsonl
# The model comes from --model, else $VLM_MODEL; with neither, the official YOLO11n is exported to
# TorchScript with ultralytics (which downloads yolo11n.pt when online) into models/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" >&2
"$root/scripts/build.sh" "${VLM_PRESET:-auto}" vlmserve >&2
bin="$root/build/${VLM_PRESET:-auto}/cli/vlmserve"

needs_model=0
case "${1:-}" in detect|serve|think) needs_model=1 ;; esac
for arg in "$@"; do [[ "$arg" == --model* || "$arg" == --config* ]] && needs_model=0; done
[[ -n "${VLM_MODEL:-}" ]] && needs_model=0

if [[ $needs_model == 1 ]]; then
  model="$root/models/yolo11n.torchscript"
  if [[ ! -f "$model" ]]; then
    echo "run.sh: no --model or VLM_MODEL given: exporting the official YOLO11n with ultralytics" >&2
    mkdir -p "$root/models"
    if ! (cd "$root/models" && YOLO_OFFLINE=0 "$root/.venv/bin/yolo" export model=yolo11n.pt format=torchscript imgsz=640 >&2); then
      cat >&2 <<MSG
run.sh: could not get yolo11n.pt (offline?). Give a model explicitly, for example the YOLOv5n weights
in ../shared/assets, exported with the yolov5 package:
  .venv/bin/python -m yolov5.export --weights ../shared/assets/models/yolov5n.pt --include torchscript
  scripts/run.sh detect photos/ --model ../shared/assets/models/yolov5n.torchscript --out results.jsonl
or set VLM_MODEL=/path/to/model.torchscript (any Ultralytics/yolov5 TorchScript export or Florence-2 folder).
MSG
      exit 2
    fi
  fi
  export VLM_MODEL="$model"
fi
exec "$bin" "$@"
