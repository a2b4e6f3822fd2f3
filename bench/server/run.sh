#!/usr/bin/env bash
# Server throughput and latency on loopback at 1, 8 and 32 concurrent clients, beside the Python
# reference (yolov5 package or ultralytics predict) looping over the same images in the same run.
#
#   bench/server/run.sh --bin build/cpu/cli/vlmserve --model build/test-data/yolov5n.torchscript \
#       [--device cpu|cuda] [--half] [--family yolov5|ultralytics] [--reference-model PATH] \
#       [--seconds 10] [--clients "1 8 32"] [--threads N] [--batch-max 8] [--batch-wait-ms 5] [--no-reference]
#
# --reference-model: what the Python side loads (default: --model; yolov5 accepts the TorchScript
# export or the .pt). Prints one table and the ratio server/Python at each concurrency.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${VLM_PYTHON:-$root/.venv/bin/python}"
bin="" model="" device="cpu" half="" family="yolov5" ref_model="" seconds=10 clients="1 8 32" threads=0
batch_max=8 batch_wait_ms=5 reference=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --half) half="--half"; shift ;;
    --family) family="$2"; shift 2 ;;
    --reference-model) ref_model="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --batch-max) batch_max="$2"; shift 2 ;;
    --batch-wait-ms) batch_wait_ms="$2"; shift 2 ;;
    # Where the reference package cannot be installed (the GPU machine has no opencv-python): the
    # server side alone, with the reason printed instead of a ratio.
    --no-reference) reference=0; shift ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -x "$bin" && -f "$model" ]] || { echo "need --bin (built vlmserve) and --model (TorchScript export)" >&2; exit 2; }
ref_model="${ref_model:-$model}"
assets="${VLM_ASSETS:-$root/../shared/assets}"
images=("$assets"/images/*.jpg "$assets"/images/coco8/images/*.jpg)
out="$(mktemp -d)"
trap 'kill "$server_pid" 2>/dev/null || true; rm -rf "$out"' EXIT

"$bin" serve --model "bench=$model" --device "$device" ${half:+--half} --threads "$threads" --port 0 \
  --batch-max "$batch_max" --batch-wait-ms "$batch_wait_ms" --queue 256 2> "$out/server.log" &
server_pid=$!
# The access log stays on (info level), as a deployment would run it.
port=""
for _ in $(seq 600); do
  port="$(grep -m1 -oP 'listening on https?://[^ ]+:\K[0-9]+' "$out/server.log" || true)"
  [[ -n "$port" ]] && curl -sf "http://127.0.0.1:$port/ready" > /dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$out/server.log" >&2; exit 1; }
  sleep 0.2
done
[[ -n "$port" ]] || { echo "server did not become ready" >&2; cat "$out/server.log" >&2; exit 1; }

echo "server: vlmserve on $device, batch-max $batch_max, batch-wait-ms $batch_wait_ms, port $port" >&2
# shellcheck disable=SC2086
"$python" "$root/bench/server/load.py" --port "$port" --images "${images[@]}" --clients $clients \
  --seconds "$seconds" | tee "$out/server.jsonl" >&2
kill -TERM "$server_pid"; wait "$server_pid" || true

if [[ $reference == 0 ]]; then
  echo "device: $device (no Python reference in this run: ratio not measured)"
  cat "$out/server.jsonl"
  exit 0
fi
echo "python reference: $family on $device" >&2
ref_threads=()
[[ "$threads" != 0 ]] && ref_threads=(--threads "$threads")
# shellcheck disable=SC2086
"$python" "$root/bench/server/python_reference.py" --model "$ref_model" --family "$family" --device "$device" $half \
  "${ref_threads[@]}" --images "${images[@]}" --batches $clients --seconds "$seconds" | tee "$out/python.jsonl" >&2

"$python" - "$out/server.jsonl" "$out/python.jsonl" "$device" <<'PY'
import json, sys
# Only the JSON lines: the reference packages may print warnings on stdout.
rows = lambda path: [json.loads(l) for l in open(path) if l.startswith("{")]
server = rows(sys.argv[1])
python = {r["batch"]: r for r in rows(sys.argv[2])}
print(f"device: {sys.argv[3]}")
print(f"{'clients':>7} | {'server req/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} | {'python img/s':>12} {'p50 ms':>8} {'p99 ms':>8} | {'ratio':>6}")
for s in server:
    p = python.get(s["clients"])
    ratio = s["req_per_s"] / p["images_per_s"] if p and p["images_per_s"] else float("nan")
    print(f"{s['clients']:>7} | {s['req_per_s']:>12.2f} {s['p50_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['errors']:>6} | "
          f"{p['images_per_s'] if p else float('nan'):>12.2f} {p['p50_ms'] if p else float('nan'):>8.1f} "
          f"{p['p99_ms'] if p else float('nan'):>8.1f} | {ratio:>6.2f}")
print("python p50/p99 are per call: one image at 1, a batch of N images at N (its whole batch waits for one call).")
PY
