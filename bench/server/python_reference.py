"""The Python reference on the same machine and images: the `yolov5` package's inference (YOLOv5
TorchScript/.pt through DetectMultiBackend, letterbox, NMS, box scaling) or `ultralytics` predict
(YOLOv8), looping over the images one call at a time, and for N > 1 as batches of N images.
Prints JSON lines with images/s and per-call latency percentiles."""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402


def percentile(values, q):
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def yolov5_runner(model_path, device, half):
    import cv2
    import yolov5.models.common as common
    import yolov5.utils.downloads as downloads

    for module in (common, downloads):  # local weights: skip yolov5's hub lookup (see tests/parity/yolo_fixtures.py)
        module.attempt_download_from_hub = lambda *a, **k: None
    from yolov5.models.common import DetectMultiBackend
    from yolov5.utils.augmentations import letterbox
    from yolov5.utils.general import non_max_suppression, scale_boxes

    dev = torch.device(device)
    model = DetectMultiBackend(str(model_path), device=dev, fp16=half)

    def run(paths):
        bgrs = [cv2.imread(str(p)) for p in paths]
        batch = []
        for bgr in bgrs:
            padded = letterbox(bgr, (640, 640), stride=model.stride, auto=False)[0]
            batch.append(np.ascontiguousarray(padded.transpose(2, 0, 1)[::-1]))
        x = torch.from_numpy(np.stack(batch)).to(dev)
        x = (x.half() if half else x.float()) / 255
        with torch.no_grad():
            pred = model(x)
        dets = non_max_suppression(pred, 0.25, 0.45, max_det=300)
        for det, bgr in zip(dets, bgrs):
            det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], bgr.shape)
            det.cpu()
        return dets

    return run


def ultralytics_runner(model_path, device, half):
    from ultralytics import YOLO

    model = YOLO(str(model_path), task="detect")

    def run(paths):
        # `half` only when asked: ultralytics 8.4 warns on every call that passes it (deprecated).
        extra = {"half": True} if half else {}
        return model.predict([str(p) for p in paths], imgsz=640, device=device, verbose=False, **extra)

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--family", choices=["yolov5", "ultralytics"], default="yolov5")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true")
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda:0" if args.device == "cuda" else args.device
    run = (yolov5_runner if args.family == "yolov5" else ultralytics_runner)(args.model, device, args.half)
    paths = [Path(p) for p in args.images]
    run(paths[:1])
    run(paths[:1])
    for n in args.batches:
        latencies, images, i = [], 0, 0
        deadline = time.perf_counter() + args.seconds
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            chunk = [paths[(i + k) % len(paths)] for k in range(n)]
            i += n
            t = time.perf_counter()
            run(chunk)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            latencies.append(time.perf_counter() - t)
            images += n
        elapsed = time.perf_counter() - start
        print(json.dumps({"batch": n, "images": images, "images_per_s": round(images / elapsed, 2),
                          "p50_ms": round(percentile(latencies, 0.5) * 1e3, 1),
                          "p99_ms": round(percentile(latencies, 0.99) * 1e3, 1),
                          "mean_ms": round(statistics.fmean(latencies) * 1e3, 1)}), flush=True)


if __name__ == "__main__":
    main()
