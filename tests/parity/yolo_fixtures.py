"""Test setup for YOLO parity: exports models to TorchScript and records the reference packages' detections.

Writes into $VLM_TEST_DATA:
  yolov5n.torchscript          official COCO YOLOv5n, exported by the pinned `yolov5` package
  yolov8n.torchscript          yolov8n.yaml with random weights (seed 0), exported by `ultralytics`
  yolo11n.torchscript          yolo11n.yaml with random weights (seed 0), exported by `ultralytics`
  yolo26n.torchscript          yolo26n.yaml with random weights (seed 0), exported with its end-to-end
                               (NMS-free) head, as the official YOLO26 exports are
  reference_<model>.json       {image path: [[x1, y1, x2, y2, score, class], ...]} from each package's own inference
Nothing is downloaded; re-running with unchanged inputs reuses the exports.
"""

import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The product's export helper: its offline/weights_only handling is the one the fixtures rely on too.
sys.path.insert(0, str(ROOT / "scripts"))
import export_yolo  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

export_yolo.prepare_yolov5()

ASSETS = Path(os.environ.get("VLM_ASSETS", ROOT / ".." / "shared" / "assets"))
OUT = Path(os.environ.get("VLM_TEST_DATA", "build/test-data"))

# Settings shared with the C++ side (tests/parity/test_yolo_parity.py passes the same flags).
V5_SETTINGS = {"conf": 0.25, "iou": 0.45, "max_det": 300}
RANDOM_SETTINGS = {"conf": 0.5, "iou": 0.7, "max_det": 100}


def photos():
    images = sorted((ASSETS / "images").glob("*.jpg")) + sorted((ASSETS / "images" / "coco8" / "images").glob("*.jpg"))
    if not images:
        sys.exit(f"no photos under {ASSETS / 'images'}")
    return images


def export_yolov5():
    target = OUT / "yolov5n.torchscript"
    if target.exists():
        return target
    return export_yolo.export(ASSETS / "models" / "yolov5n.pt", target)


def reference_yolov5(model_path):
    from yolov5.models.common import DetectMultiBackend
    from yolov5.utils.augmentations import letterbox
    from yolov5.utils.general import non_max_suppression, scale_boxes
    import cv2

    model = DetectMultiBackend(str(model_path), device=torch.device("cpu"))
    results = {}
    for path in photos():
        bgr = cv2.imread(str(path))
        padded = letterbox(bgr, (640, 640), stride=model.stride, auto=False)[0]
        x = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)[::-1])).float().div(255)[None]
        with torch.no_grad():
            pred = model(x)
        det = non_max_suppression(pred, V5_SETTINGS["conf"], V5_SETTINGS["iou"], max_det=V5_SETTINGS["max_det"])[0]
        det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], bgr.shape)
        results[str(path)] = det.tolist()
    return results


def export_random(config, end_to_end=False):
    name = Path(config).stem
    target = OUT / f"{name}.torchscript"
    if target.exists():
        return target
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO(config)  # builds from the yaml: random weights, no download
    net = model.model
    # Fresh weights leave activations near zero and every score equal. One training-mode pass over the
    # letterboxed test photos sets the BatchNorm statistics for exactly these inputs, and a class bias
    # of -3 spreads the scores over (0, 1) without saturating at 1.0, so that thresholds, NMS and score
    # order are all exercised (ties at 1.0 would make the kept set depend on sort tie-breaking).
    from ultralytics.data.augment import LetterBox
    import cv2

    batch = []
    for path in photos():
        padded = LetterBox(640, auto=False)(image=cv2.imread(str(path)))
        batch.append(torch.from_numpy(np.ascontiguousarray(padded[..., ::-1].transpose(2, 0, 1))).float() / 255)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0
    head = net.model[-1]
    for branch in list(head.cv3) + list(getattr(head, "one2one_cv3", None) or []):
        branch[-1].bias.data.fill_(-3.0)
    net.train()
    with torch.no_grad():
        net(torch.stack(batch))
    net.eval()
    # nms=False keeps the one-to-one head: the export answers [B, 300, 6] rows already selected.
    exported = model.export(format="torchscript", imgsz=640, device="cpu", **({"nms": False} if end_to_end else {}))
    shutil.move(exported, target)
    return target


def reference_ultralytics(model_path):
    from ultralytics import YOLO

    model = YOLO(str(model_path), task="detect")
    results = {}
    for path in photos():
        r = model.predict(str(path), conf=RANDOM_SETTINGS["conf"], iou=RANDOM_SETTINGS["iou"],
                          max_det=RANDOM_SETTINGS["max_det"], imgsz=640, device="cpu", verbose=False)[0]
        boxes = r.boxes
        rows = torch.cat([boxes.xyxy, boxes.conf[:, None], boxes.cls[:, None]], 1)
        results[str(path)] = rows.tolist()
    return results


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        v5 = export_yolov5()
    except export_yolo.ExportError as error:
        sys.exit(str(error))
    (OUT / "reference_yolov5n.json").write_text(json.dumps({"settings": V5_SETTINGS, "images": reference_yolov5(v5)}))
    for config in ("yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml"):
        path = export_random(config, end_to_end=config == "yolo26n.yaml")
        refs = reference_ultralytics(path)
        (OUT / f"reference_{path.stem}.json").write_text(json.dumps({"settings": RANDOM_SETTINGS, "images": refs}))
    print(f"YOLO fixtures written to {OUT}")


if __name__ == "__main__":
    main()
