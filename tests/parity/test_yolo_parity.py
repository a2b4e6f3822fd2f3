"""`vlmserve detect` against the reference packages on real photos (fixtures from yolo_fixtures.py).

Tolerances (fp32, CPU): same number of detections, same classes, every box corner within 1 pixel,
scores within 1e-3; a detection kept in place of the reference's is accepted only as a measured
near-tie (see match(), printed). Also: the bus photo shows the bus and the people, and large coco8 ground-truth
objects are found.

Usage: test_yolo_parity.py MODEL [--device cpu|cuda] [--half] [--box-tol PX] [--score-tol S]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ASSETS = Path(os.environ["VLM_ASSETS"])
DATA = Path(os.environ["VLM_TEST_DATA"])
BIN = os.environ["VLM_BIN"]

COCO_PERSON, COCO_BUS = 0, 5


def skip_without_cuda(device):
    """Exit 77 (ctest: skipped) when --device cuda has no CUDA device to run on, as on CI's machines."""
    if device != "cuda":
        return
    proc = subprocess.run([BIN, "--version"], capture_output=True, text=True, timeout=120)
    devices = json.loads(proc.stdout)["cuda"]["devices"] if proc.returncode == 0 else 0
    if devices == 0:
        print(f"skipped: vlmserve sees no CUDA device (--version exit {proc.returncode})")
        sys.exit(77)


def run_detect(model, settings, device, half, batch, extra_args=(), with_log=False):
    """The JSON records of `vlmserve detect` over the photos; with_log: (records, its stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.jsonl"
        cmd = [BIN, "detect", str(ASSETS / "images"), str(ASSETS / "images" / "coco8" / "images"),
               "--model", str(DATA / f"{model}.torchscript"), "--out", str(out), "--device", device,
               "--conf", str(settings["conf"]), "--iou", str(settings["iou"]), "--max-det", str(settings["max_det"]),
               "--batch", str(batch)]
        if half:
            cmd.append("--half")
        cmd += list(extra_args)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            sys.exit(f"vlmserve detect failed ({proc.returncode}):\n{proc.stderr}")
        records = [json.loads(line) for line in out.read_text().splitlines()]
        return (records, proc.stderr) if with_log else records


def pair(ref_rows, ours, box_tol, score_tol):
    """Greedy one-to-one matching in reference order: each reference row (x1, y1, x2, y2, score, cls)
    takes the unused detection of its class within both tolerances with the smallest box error.

    Returns (pairs as (row, detection, box error, score error), unmatched rows, unused detections).
    """
    unused = list(range(len(ours)))
    pairs, lost = [], []
    for row in ref_rows:
        x1, y1, x2, y2, score, cls = row
        best = None
        for k in unused:
            d = ours[k]
            box_err = max(abs(a - b) for a, b in zip(d["box"], (x1, y1, x2, y2)))
            score_err = abs(d["score"] - score)
            if d["class_id"] == int(cls) and box_err <= box_tol and score_err <= score_tol:
                if best is None or box_err < best[1]:
                    best = (k, box_err, score_err)
        if best is None:
            lost.append(tuple(row))
        else:
            unused.remove(best[0])
            pairs.append((row, ours[best[0]], best[1], best[2]))
    return pairs, lost, [ours[k] for k in unused]


def match(ref_rows, ours, box_tol, score_tol, iou_threshold):
    """Returns (problems, near-tie flips, worst box error, worst score error) of pair() at the tolerances.

    A reference detection with no match is accepted only as a measured near-tie, where one of our
    unmatched detections has a score within score_tol of it (the bound on how far our scores may be
    from the reference's) and either
      - is of the same class and overlaps it by more than the NMS IoU threshold: the two competed in
        NMS with scores too close for the order to be fixed, so either implementation may keep either; or
      - has the same box (within box_tol) and another class: at that anchor two class scores are within
        score_tol of each other, so the argmax may pick either.
    Each such flip is printed with its score gap; anything else is a failure.
    """
    problems = []
    if len(ref_rows) != len(ours):
        problems.append(f"{len(ours)} detections, reference has {len(ref_rows)}")
    pairs, unmatched, unused = pair(ref_rows, ours, box_tol, score_tol)
    worst_box = max((p[2] for p in pairs), default=0.0)
    worst_score = max((p[3] for p in pairs), default=0.0)
    flips = []
    for x1, y1, x2, y2, score, cls in unmatched:
        where = f"reference class {int(cls)} score {score:.4f} box [{x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}]"
        box = (x1, y1, x2, y2)

        def kind(d):
            if abs(d["score"] - score) > score_tol:
                return None
            if d["class_id"] == int(cls) and iou(d["box"], box) > iou_threshold:
                return "NMS order"
            if d["class_id"] != int(cls) and max(abs(a - b) for a, b in zip(d["box"], box)) <= box_tol:
                return f"class argmax (ours class {d['class_id']})"
            return None

        rivals = [d for d in unused if kind(d)]
        if not rivals:
            problems.append(f"no match for {where}, and no rival of ours within {score_tol} of its score "
                            f"(same class overlapping it, or same box with another class)")
            continue
        rival = min(rivals, key=lambda d: abs(d["score"] - score))
        unused.remove(rival)
        flips.append(f"{where}: {kind(rival)} near-tie, ours score {rival['score']:.4f}, "
                     f"gap {abs(rival['score'] - score):.2e}")
    return problems, flips, worst_box, worst_score


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def check_ground_truth(records):
    """Large coco8 objects (over 5% of the image) are found with their class at IoU >= 0.5 (recall >= 0.8).

    Run at conf 0.1: YOLOv5n, the smallest COCO model, scores the umbrella in 000000000036 at 0.23 and
    never finds the dog in 000000000042 (neither does the yolov5 package: parity above is exact), so
    one miss in the five large objects is the model's, not ours.
    """
    problems, found, total = [], 0, 0
    for record in records:
        path = Path(record["path"])
        label_file = ASSETS / "images" / "coco8" / "labels" / (path.stem + ".txt")
        if not label_file.exists():
            continue
        w, h = record["width"], record["height"]
        for line in label_file.read_text().split("\n"):
            if not line.strip():
                continue
            cls, cx, cy, bw, bh = line.split()
            cls, cx, cy, bw, bh = int(cls), float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
            if bw * bh < 0.05 * w * h:
                continue
            truth = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
            total += 1
            if any(d["class_id"] == cls and iou(d["box"], truth) >= 0.5 for d in record["detections"]):
                found += 1
            else:
                problems.append(f"{path.name}: ground-truth class {cls} at {[round(v) for v in truth]} not found")
    print(f"coco8 large objects found: {found}/{total}" + ("" if not problems else f" (missed: {'; '.join(problems)})"))
    return [] if total and found >= 0.8 * total else problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true")
    parser.add_argument("--box-tol", type=float, default=1.0)
    parser.add_argument("--score-tol", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    skip_without_cuda(args.device)

    reference = json.loads((DATA / f"reference_{args.model}.json").read_text())
    records = run_detect(args.model, reference["settings"], args.device, args.half, args.batch)
    by_path = {r["path"]: r for r in records}
    failures = []
    total = worst_box = worst_score = 0
    flip_lines = []
    for path, rows in reference["images"].items():
        record = by_path.get(path)
        if record is None or "error" in record:
            failures.append(f"{path}: no result ({record and record.get('error')})")
            continue
        problems, flips, box_err, score_err = match(rows, record["detections"], args.box_tol, args.score_tol,
                                                     reference["settings"]["iou"])
        total += len(rows)
        flip_lines += [f"{Path(path).name}: {f}" for f in flips]
        worst_box, worst_score = max(worst_box, box_err), max(worst_score, score_err)
        failures += [f"{Path(path).name}: {p}" for p in problems]

    tie_flips = len(flip_lines)
    if flip_lines:
        print("near-tie flips (rival scores within the score tolerance):\n  " + "\n  ".join(flip_lines))

    if args.model == "yolov5n":
        bus = by_path[str(ASSETS / "images" / "bus.jpg")]["detections"]
        if not any(d["class_id"] == COCO_BUS for d in bus):
            failures.append("bus.jpg: no bus detected")
        if sum(d["class_id"] == COCO_PERSON for d in bus) < 3:
            failures.append("bus.jpg: fewer than 3 people detected")
        gt_settings = dict(reference["settings"], conf=0.1)
        failures += check_ground_truth(run_detect(args.model, gt_settings, args.device, args.half, args.batch))

    print(f"{args.model} on {args.device}{' fp16' if args.half else ''}: {len(reference['images'])} photos, "
          f"{total} reference detections, worst box error {worst_box:.4f} px, worst score error {worst_score:.2e}, "
          f"{tie_flips} near-tie flips")
    if failures:
        print("\n".join(failures[:40]))
        sys.exit(1)


if __name__ == "__main__":
    main()
