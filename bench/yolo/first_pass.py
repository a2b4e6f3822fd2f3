"""First-batch latency against steady state for `vlmserve detect` on the GPU, for one or more
binaries run the same way (to compare builds in one device call).

For each binary and batch size: one process over COPIES copies of a photo; the first batch's
inference_ms (the first forward pass at that batch size after loading) against the median of the
remaining batches. Prints one table.
  python3 bench/yolo/first_pass.py --model M.torchscript --photo bus.jpg NAME=BIN [NAME=BIN ...]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile


def run(binary, model, folder, batch, device, half):
    args = [binary, "detect", folder, "--model", model, "--device", device, "--batch", str(batch)]
    if half:
        args.append("--half")
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"{binary} exit {out.returncode}: {out.stderr[-500:]}")
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    # Every image of a batch carries the batch's inference time: take one per batch.
    per_batch = [records[i]["timings"]["inference_ms"] for i in range(0, len(records), batch)]
    return per_batch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--photo", required=True)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--copies", type=int, default=64)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--half", action="store_true")
    parser.add_argument("binaries", nargs="+", help="NAME=PATH")
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    for i in range(args.copies):
        shutil.copy(args.photo, os.path.join(folder, f"{i:04d}.jpg"))
    print(f"{'binary':<10} {'batch':>5} {'first ms':>9} {'steady ms':>10} {'first/steady':>12}")
    for spec in args.binaries:
        name, binary = spec.split("=", 1)
        for batch in map(int, args.batches.split(",")):
            times = run(binary, args.model, folder, batch, args.device, args.half)
            steady = statistics.median(times[1:])
            print(f"{name:<10} {batch:>5} {times[0]:>9.2f} {steady:>10.2f} {times[0] / steady:>12.2f}", flush=True)


if __name__ == "__main__":
    main()
