"""The Python reference on the same machine and images: the `yolov5` package's inference (YOLOv5
TorchScript/.pt through DetectMultiBackend, letterbox, NMS, box scaling) or `ultralytics` predict
(YOLOv8/11), either
  - in-process: looping over the images one call at a time, and for N > 1 as batches of N images
    (JSON lines with images/s and per-call latency percentiles); or
  - with --serve PORT: behind the smallest HTTP endpoint a Python user would deploy (the standard
    library's threading HTTP server, POST /detect with JPEG bytes, one image per request, answered
    with the detections as JSON), for bench/server/load.py to drive exactly as it drives vlmserve.
    Prints "listening on PORT" once ready (PORT 0 picks a free one)."""

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

    def run(bgrs):
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

    def run(bgrs):
        # `half` only when asked: ultralytics 8.4 warns on every call that passes it (deprecated).
        extra = {"half": True} if half else {}
        results = model.predict(bgrs, imgsz=640, device=device, verbose=False, **extra)
        return [torch.cat([r.boxes.xyxy, r.boxes.conf[:, None], r.boxes.cls[:, None]], 1) for r in results]

    return run


def serve(run, port):
    import cv2
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as load.py's clients expect

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            bgr = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
            if self.path != "/detect" or bgr is None:
                self.answer(400, {"error": "POST /detect with a JPEG body"})
                return
            det = run([bgr])[0].cpu().tolist()
            self.answer(200, {"detections": [{"box": d[:4], "score": d[4], "class_id": int(d[5])} for d in det]})

        def answer(self, status, payload):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--family", choices=["yolov5", "ultralytics"], default="yolov5")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true")
    parser.add_argument("--images", nargs="+")
    parser.add_argument("--serve", type=int, metavar="PORT", help="serve POST /detect instead of looping")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda:0" if args.device == "cuda" else args.device
    run = (yolov5_runner if args.family == "yolov5" else ultralytics_runner)(args.model, device, args.half)
    import cv2

    if not args.images:
        parser.error("--images is required (with --serve: for the warm-up)")
    paths = [Path(p) for p in args.images]
    for _ in range(2):
        run([cv2.imread(str(paths[0]))])
    if args.serve is not None:
        serve(run, args.serve)
        return
    for n in args.batches:
        latencies, images, i = [], 0, 0
        deadline = time.perf_counter() + args.seconds
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            chunk = [paths[(i + k) % len(paths)] for k in range(n)]
            i += n
            t = time.perf_counter()
            run([cv2.imread(str(p)) for p in chunk])  # reading and decoding the files is part of the work
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
