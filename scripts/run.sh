#!/usr/bin/env bash
# The main job in one command: setup, build, then `vlmserve ARGS...`.
#   scripts/run.sh detect photos/ --out results.jsonl
# Setup and build print nothing unless they have work to do. The model comes from --model, else
# $VLM_MODEL; with neither, the official YOLO11n is exported to TorchScript with ultralytics (which
# downloads yolo11n.pt when online) into models/. Offline, it prints the commands that export a local
# checkpoint with scripts/export_yolo.sh instead, written to work as typed from the current folder.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" >&2
"$root/scripts/build.sh" "${VLM_PRESET:-auto}" vlmserve >&2
bin="$root/build/${VLM_PRESET:-auto}/cli/vlmserve"

needs_model=0
case "${1:-}" in detect|serve|think) needs_model=1 ;; esac
for arg in "$@"; do [[ "$arg" == --model* || "$arg" == --config* ]] && needs_model=0; done
[[ -n "${VLM_MODEL:-}" ]] && needs_model=0

# A path as the user can type it here: relative to the current folder when that stays short.
shown() {
  local rel
  rel="$(realpath -ms --relative-to="$PWD" "$1")"
  [[ "$rel" == ../../* ]] && rel="$(realpath -ms "$1")"
  printf '%q' "$rel"
}

advise_offline() {
  local reason="$1" weights="${VLM_ASSETS:-$root/../shared/assets}/models/yolov5n.pt" export_cmd target
  shift
  export_cmd="$(shown "$root/scripts/export_yolo.sh")"
  echo "run.sh: could not download yolo11n.pt (offline?): $reason" >&2
  if [[ -f "$weights" ]]; then
    target="$root/models/yolov5n.torchscript"
    echo "Export the YOLOv5n weights in $(shown "$(dirname "$weights")") (offline), then run with that model:" >&2
    echo "  $export_cmd $(shown "$weights")" >&2
  else
    target="$root/models/WEIGHTS.torchscript"
    echo "Export any Ultralytics or yolov5 checkpoint you have (offline), then run with that model:" >&2
    echo "  $export_cmd WEIGHTS.pt" >&2
  fi
  echo "  $(shown "$root/scripts/run.sh")$(printf ' %q' "$@") --model $(shown "$target")" >&2
  echo "(or set VLM_MODEL to any YOLO TorchScript export or Florence-2 model folder)" >&2
}

if [[ $needs_model == 1 ]]; then
  model="$root/models/yolo11n.torchscript"
  if [[ ! -f "$model" ]]; then
    echo "run.sh: no --model or VLM_MODEL given: exporting the official YOLO11n with ultralytics" >&2
    mkdir -p "$root/models"
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    if ! (cd "$root/models" && "$root/.venv/bin/yolo" export model=yolo11n.pt format=torchscript imgsz=640 \
          >"$log" 2>&1); then
      # The package's traceback says little more than its last line; keep the advice on screen.
      reason="$(grep -E '^[A-Za-z_.]+(Error|Exception)\b' "$log" | tail -n 1 | LC_ALL=C tr -cd '[:print:]' | sed 's/  */ /g')"
      advise_offline "${reason:-see \`yolo export model=yolo11n.pt format=torchscript\`}" "$@"
      exit 2
    fi
  fi
  export VLM_MODEL="$model"
fi
exec "$bin" "$@"
