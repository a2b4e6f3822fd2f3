#!/usr/bin/env bash
# Exports an Ultralytics or yolov5 .pt checkpoint to TorchScript, offline, with the project's Python.
#   scripts/export_yolo.sh WEIGHTS.pt [--out FOLDER_OR_FILE]     (default: models/ in the repo)
# Runs setup first (silent when there is nothing to do), like scripts/run.sh; see export_yolo.py.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" >&2
exec "${VLM_VENV:-$root/.venv}/bin/python" "$root/scripts/export_yolo.py" "$@"
