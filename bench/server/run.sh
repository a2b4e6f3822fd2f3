#!/usr/bin/env bash
# Server throughput and latency on loopback at 1, 8 and 32 concurrent clients, beside the Python
# reference (yolov5 package or ultralytics predict) in the same run: looping over the same images
# in-process, and behind a minimal Python HTTP endpoint driven by the same load generator.
#
#   bench/server/run.sh --bin build/cpu/cli/vlmserve --model build/test-data/yolov5n.torchscript \
#       [--device cpu|cuda] [--half] [--family yolov5|ultralytics] [--reference-model PATH] \
#       [--seconds 10] [--clients "1 8 32"] [--threads N] [--batch-max 8] [--batch-wait-ms 5] [--no-reference]
#       [--serve-arg ARG]...
#
# --reference-model: what the Python side loads (default: --model; yolov5 accepts the TorchScript
# export or the .pt). --serve-arg passes one more argument to `vlmserve serve` (e.g.
# --serve-arg --cuda-graphs=false). Prints one table and the ratio server/Python at each concurrency.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${VLM_PYTHON:-$root/.venv/bin/python}"
bin="" model="" device="cpu" half="" family="yolov5" ref_model="" seconds=10 clients="1 8 32" threads=0
batch_max=8 batch_wait_ms=5 reference=1 serve_args=()
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
    --serve-arg) serve_args+=("$2"); shift 2 ;;
    # Where the reference package cannot be installed (the GPU machine has no opencv-python): the
    # server side alone, with the reason printed instead of a ratio.
    --no-reference) reference=0; shift ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -x "$bin" && -f "$model" ]] || { echo "need --bin (built vlmserve) and --model (TorchScript export)" >&2; exit 2; }
ref_model="${ref_model:-$model}"
assets="${VLM_ASSETS:-$root/../shared/assets}"
images=("$assets"/images/*.jpg "$assets"/images/coco8/images/*.jpg)
out="$(mktemp -d)"
trap 'kill "$server_pid" 2>/dev/null || true; rm -rf "$out"' EXIT

# The load generator is one peer, and every client keeps one request in flight: the per-peer
# connection cap and the admission bound (32 each by default) would answer the clients past them with
# 503 and the row would measure the guards, so both are raised above the largest client count (and
# the connection workers with them). Builds from before a guard lack its flag.
most=0
for c in $clients; do (( c > most )) && most=$c; done
limits=()
serve_help="$("$bin" serve --help 2>/dev/null || true)"
grep -q -- --max-connections-per-peer <<<"$serve_help" && limits+=(--max-connections-per-peer "$(( most + 8 ))")
if grep -q -- --max-concurrent-requests <<<"$serve_help" && (( most + 8 > 32 )); then
  limits+=(--max-concurrent-requests "$(( most + 8 ))" --http-max-threads "$(( 2 * (most + 8) ))")
fi
"$bin" serve --model "bench=$model" --device "$device" ${half:+--half} --threads "$threads" --port 0 \
  --batch-max "$batch_max" --batch-wait-ms "$batch_wait_ms" --queue 256 "${limits[@]}" "${serve_args[@]}" \
  2> "$out/server.log" &
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

echo "server: vlmserve on $device, batch-max $batch_max, batch-wait-ms $batch_wait_ms, port $port${serve_args[*]:+, ${serve_args[*]}}" >&2
# shellcheck disable=SC2086
"$python" "$root/bench/server/load.py" --port "$port" --images "${images[@]}" --clients $clients \
  --seconds "$seconds" --stages | tee "$out/server.jsonl" >&2
kill -TERM "$server_pid"; wait "$server_pid" || true

# Where the server's time went at each point (its own timings, from /metrics), beside what the
# clients measured: the gap is the client, the loopback and waiting for a connection worker.
"$python" "$root/bench/server/stage_breakdown.py" "$out/server.jsonl"

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

# The same reference behind a minimal Python HTTP endpoint, driven by the same load generator.
"$python" "$root/bench/server/python_reference.py" --model "$ref_model" --family "$family" --device "$device" $half \
  "${ref_threads[@]}" --images "${images[0]}" --serve 0 > "$out/python_http.log" 2>&1 &
python_pid=$!
trap 'kill "$server_pid" "$python_pid" 2>/dev/null || true; rm -rf "$out"' EXIT
python_port=""
for _ in $(seq 600); do
  python_port="$(grep -m1 -oP '^listening on \K[0-9]+' "$out/python_http.log" || true)"
  [[ -n "$python_port" ]] && break
  kill -0 "$python_pid" 2>/dev/null || { cat "$out/python_http.log" >&2; exit 1; }
  sleep 0.2
done
[[ -n "$python_port" ]] || { echo "the Python HTTP reference did not start" >&2; exit 1; }
echo "python http reference: $family on $device, port $python_port" >&2
# shellcheck disable=SC2086
"$python" "$root/bench/server/load.py" --port "$python_port" --images "${images[@]}" --clients $clients \
  --seconds "$seconds" | tee "$out/python_http.jsonl" >&2
kill "$python_pid"; wait "$python_pid" 2>/dev/null || true

"$python" - "$out/server.jsonl" "$out/python.jsonl" "$out/python_http.jsonl" "$device" <<'PY'
import json, sys
# Only the JSON lines: the reference packages may print warnings on stdout.
rows = lambda path: [json.loads(l) for l in open(path) if l.startswith("{")]
server = rows(sys.argv[1])
python = {r["batch"]: r for r in rows(sys.argv[2])}
http = {r["clients"]: r for r in rows(sys.argv[3])}
nan = float("nan")
print(f"device: {sys.argv[4]}")
print(f"{'clients':>7} | {'vlmserve req/s':>14} {'p50 ms':>7} {'p99 ms':>7} {'err':>4} | {'py http req/s':>13} {'p50 ms':>7} "
      f"{'p99 ms':>7} {'err':>4} | {'py loop img/s':>13} {'p50 ms':>7} | {'vs http':>7} {'vs loop':>7}")
for s in server:
    p = python.get(s["clients"], {})
    h = http.get(s["clients"], {})
    vs_http = s["req_per_s"] / h["req_per_s"] if h.get("req_per_s") else nan
    vs_loop = s["req_per_s"] / p["images_per_s"] if p.get("images_per_s") else nan
    print(f"{s['clients']:>7} | {s['req_per_s']:>14.2f} {s['p50_ms']:>7.1f} {s['p99_ms']:>7.1f} {s['errors']:>4} | "
          f"{h.get('req_per_s', nan):>13.2f} {h.get('p50_ms', nan):>7.1f} {h.get('p99_ms', nan):>7.1f} "
          f"{h.get('errors', 0):>4} | {p.get('images_per_s', nan):>13.2f} {p.get('p50_ms', nan):>7.1f} | "
          f"{vs_http:>7.2f} {vs_loop:>7.2f}")
print("py loop: the reference in-process, one call of N images at N clients (p50 per call); py http: the same "
      "reference behind a minimal threaded HTTP endpoint, one image per request, same load generator.")
PY
