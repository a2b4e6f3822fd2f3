"""`vlmserve detect --device cuda --half` against the fp32 reference packages (ctest label gpu; on the GPU
machine, tools/gpu/run_all.sh). Exits 77 (skipped) where vlmserve sees no CUDA device.

Same photos, fixtures and settings as tests/parity/test_yolo_parity.py (whose run_detect and ground-truth
check it reuses), with tolerances for half precision:
  - boxes within --box-tol pixels (default 2) and scores within --score-tol (default 1e-2). fp16 has an
    11-bit significand: a coordinate near 640 in the network's input space is rounded to 0.25-0.5 px,
    and the photos here are scaled back up by up to 1.7x, so single roundings alone reach ~0.8 px; the
    sigmoid scores in [0, 1] carry about 5e-4 of rounding each, accumulated through the head.
  - a detection whose score lies within --score-tol of the confidence threshold may appear or vanish:
    its fp16 score can land on the other side of the threshold. Such flips are counted and listed, never
    silently dropped; any other missing or extra detection is a failure.
The worst errors are measured over pairs matched with a looser gate (same class, 10 px, 0.05) so that
they are reported even when they exceed the tolerance.
Usage (env as for test_yolo_parity.py): yolo_parity_fp16.py MODEL [--box-tol PX] [--score-tol S] [--batch N]
"""

import argparse
import importlib.util
import json
import sys
from pathlib import Path

DRIVER = Path(__file__).resolve().parents[2] / "tests" / "parity" / "test_yolo_parity.py"
spec = importlib.util.spec_from_file_location("test_yolo_parity", DRIVER)
parity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(parity)

MEASURE_BOX, MEASURE_SCORE = 10.0, 0.05


def pair(ref_rows, ours):
    """The parity test's matching under the loose measuring gate."""
    return parity.pair(ref_rows, ours, MEASURE_BOX, MEASURE_SCORE)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--box-tol", type=float, default=2.0)
    parser.add_argument("--score-tol", type=float, default=1e-2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="cuda", help="cpu only to try this script without a GPU")
    args = parser.parse_args()
    parity.skip_without_cuda(args.device)

    reference = json.loads((parity.DATA / f"reference_{args.model}.json").read_text())
    conf = reference["settings"]["conf"]
    borderline = conf + args.score_tol
    records = parity.run_detect(args.model, reference["settings"], args.device, True, args.batch)
    by_path = {r["path"]: r for r in records}
    failures, flips = [], []
    total = matched = 0
    worst_box = worst_score = 0.0
    for path, rows in reference["images"].items():
        name = Path(path).name
        record = by_path.get(path)
        if record is None or "error" in record:
            failures.append(f"{name}: no result ({record and record.get('error')})")
            continue
        pairs, lost, extra = pair(rows, record["detections"])
        total += len(rows)
        for _row, _ours, box_err, score_err in pairs:
            worst_box, worst_score = max(worst_box, box_err), max(worst_score, score_err)
            if box_err > args.box_tol or score_err > args.score_tol:
                failures.append(f"{name}: box error {box_err:.3f} px / score error {score_err:.2e} over tolerance")
            else:
                matched += 1
        for x1, y1, x2, y2, score, cls in lost:
            what = f"{name}: reference class {int(cls)} score {score:.4f} [{x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}]"
            (flips if score < borderline else failures).append(what + " missing in fp16")
        for d in extra:
            what = f"{name}: fp16 class {d['class_id']} score {d['score']:.4f} {[round(v, 1) for v in d['box']]}"
            (flips if d["score"] < borderline else failures).append(what + " not in the reference")

    if args.model == "yolov5n":
        bus = by_path[str(parity.ASSETS / "images" / "bus.jpg")]["detections"]
        if not any(d["class_id"] == parity.COCO_BUS for d in bus):
            failures.append("bus.jpg: no bus detected")
        if sum(d["class_id"] == parity.COCO_PERSON for d in bus) < 3:
            failures.append("bus.jpg: fewer than 3 people detected")
        gt_settings = dict(reference["settings"], conf=0.1)
        failures += parity.check_ground_truth(parity.run_detect(args.model, gt_settings, args.device, True, args.batch))

    print(f"{args.model} on {args.device} fp16: {len(reference['images'])} photos, {total} reference detections, "
          f"{matched} matched, {len(flips)} threshold flips (score within {args.score_tol:g} of conf {conf:g}), "
          f"worst box error {worst_box:.4f} px, worst score error {worst_score:.2e} "
          f"(tolerance {args.box_tol:g} px, {args.score_tol:g})")
    for flip in flips:
        print("  flip: " + flip)
    if failures:
        print("\n".join(failures[:40]))
        sys.exit(1)


if __name__ == "__main__":
    main()
