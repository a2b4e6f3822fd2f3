"""YOLO's forward pass replayed as CUDA graphs against the same pass run eagerly (ctest label gpu; on the
GPU machine, tools/gpu/run_all.sh). Exits 77 (skipped) where vlmserve sees no CUDA device.

`vlmserve detect` runs the photos twice per batch size, with --cuda-graphs=false and with graphs (the
default), in fp32 and fp16. A replay launches the kernels the eager pass launched, on the same inputs, so
the detections must agree to rounding noise: same count and classes in the same order, boxes within
--box-tol px (default 1e-3) and scores within --score-tol (default 1e-5). The log must not report a
failed capture. Also prints each run's median per-image inference time (the batch's forward pass,
synchronised, divided by its images), eager beside graphs: what the replay saves in launch overhead.
Usage (env as for tests/parity/test_yolo_parity.py): test_yolo_graphs.py MODEL [--batches 1,4]
"""

import argparse
import importlib.util
import json
import statistics
import sys
from pathlib import Path

DRIVER = Path(__file__).resolve().parents[2] / "tests" / "parity" / "test_yolo_parity.py"
spec = importlib.util.spec_from_file_location("test_yolo_parity", DRIVER)
parity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(parity)


def compare(eager, graphed, box_tol, score_tol):
    """Failures (list of strings), worst box and score differences over every detection."""
    failures = []
    worst_box = worst_score = 0.0
    by_path = {r["path"]: r for r in graphed}
    for record in eager:
        name = Path(record["path"]).name
        other = by_path.get(record["path"])
        if other is None or "error" in other or "error" in record:
            failures.append(f"{name}: missing or failed ({other and other.get('error')}, {record.get('error')})")
            continue
        a, b = record["detections"], other["detections"]
        if [d["class_id"] for d in a] != [d["class_id"] for d in b]:
            failures.append(f"{name}: classes {[d['class_id'] for d in a]} eager vs {[d['class_id'] for d in b]} graphs")
            continue
        for x, y in zip(a, b):
            worst_box = max(worst_box, max(abs(p - q) for p, q in zip(x["box"], y["box"])))
            worst_score = max(worst_score, abs(x["score"] - y["score"]))
    if worst_box > box_tol or worst_score > score_tol:
        failures.append(f"largest difference box {worst_box:.2e} px, score {worst_score:.2e} "
                        f"(tolerances {box_tol:g}, {score_tol:g})")
    return failures, worst_box, worst_score


def median_inference_ms(records):
    return statistics.median(r["timings"]["inference_ms"] for r in records if "timings" in r)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--box-tol", type=float, default=1e-3)
    parser.add_argument("--score-tol", type=float, default=1e-5)
    parser.add_argument("--device", default="cuda", help="cpu only to try this script without a GPU")
    args = parser.parse_args()
    parity.skip_without_cuda(args.device)

    settings = json.loads((parity.DATA / f"reference_{args.model}.json").read_text())["settings"]
    failures = []
    for half in (False, True) if args.device == "cuda" else (False,):
        precision = "fp16" if half else "fp32"
        for batch in (int(b) for b in args.batches.split(",")):
            eager = parity.run_detect(args.model, settings, args.device, half, batch, ["--cuda-graphs=false"])
            graphed, log = parity.run_detect(args.model, settings, args.device, half, batch, with_log=True)
            problems, box, score = compare(eager, graphed, args.box_tol, args.score_tol)
            if "CUDA graph capture failed" in log:
                problems.append("capture failed: " + next(l for l in log.splitlines() if "capture failed" in l))
            eager_ms, graph_ms = median_inference_ms(eager), median_inference_ms(graphed)
            print(f"{args.model} {precision} batch {batch}: {len(graphed)} images, largest difference box {box:.2e} px, "
                  f"score {score:.2e}; inference per image eager {eager_ms:.3f} ms, graphs {graph_ms:.3f} ms "
                  f"({eager_ms / graph_ms if graph_ms else float('nan'):.2f}x)" + (" FAIL" if problems else " PASS"))
            failures += [f"{precision} batch {batch}: {p}" for p in problems]
    for failure in failures:
        print("FAIL", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
