"""`vlmserve detect`'s outputs and inputs as Ultralytics users expect them, each against the real tool:
--save-txt/--save-conf/--save-crop against the yolov5 package's own detect.py (save_txt, save_conf,
save_crop) on the same photos with the same YOLOv5n weights; --format coco loaded and evaluated with
pycocotools (COCOeval against coco8's ground truth, same AP as detect.py's own labels give); --format csv
read with Python's csv module; video files (mp4, avi, mkv made here from the photos with the venv's cv2)
with --vid-stride and an annotated video; '-' (stdin), quoted glob patterns, and the progress bar on a
terminal. Uses the YOLOv5n export from yolo_fixtures."""

import csv
import io
import json
import os
import pty
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import export_yolo  # noqa: E402

ASSETS = Path(os.environ["VLM_ASSETS"])
DATA = Path(os.environ["VLM_TEST_DATA"])
BIN = os.environ["VLM_BIN"]
MODEL = DATA / "yolov5n.torchscript"
PHOTOS = [ASSETS / "images" / n for n in ("bus.jpg", "zidane.jpg")] + sorted(
    (ASSETS / "images" / "coco8" / "images").glob("*.jpg"))
# detect.py's defaults for conf and NMS IoU; ours is told the same IoU.
CONF, IOU = 0.25, 0.45
# Both letterbox to 640x640 and run the same weights; what differs is float summation order: boxes
# within 1 px and scores within 0.01 (test_yolo_parity's tolerances). A detection this close to the
# threshold may be kept by one side only.
BOX_TOL_PX, SCORE_TOL = 1.0, 0.01


def detect(*args, stdin=None, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VLM_")}
    full_env.update(env or {})
    return subprocess.run([BIN, "detect", *map(str, args)], capture_output=True, timeout=300, env=full_env,
                          input=stdin, text=stdin is None or isinstance(stdin, str))


def records_of(proc):
    out = proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode()
    return [json.loads(line) for line in out.splitlines()]


def read_labels(path, width, height):
    """[(class, x1, y1, x2, y2, score)] in pixels from a YOLO label file with scores."""
    rows = []
    for line in path.read_text().splitlines():
        c, x, y, w, h, s = map(float, line.split())
        rows.append((int(c), (x - w / 2) * width, (y - h / 2) * height, (x + w / 2) * width, (y + h / 2) * height, s))
    return rows


def unmatched(ours, reference):
    """Rows of `reference` with no row of `ours` of the same class within the tolerances, and left-over
    rows of `ours`, each only when its score is not within SCORE_TOL of the threshold."""
    left = list(ours)
    missing = []
    for ref in sorted(reference, key=lambda r: -r[5]):
        best = min((o for o in left if o[0] == ref[0]), default=None,
                   key=lambda o: max(abs(a - b) for a, b in zip(o[1:5], ref[1:5])))
        if best is not None and max(abs(a - b) for a, b in zip(best[1:5], ref[1:5])) <= BOX_TOL_PX and \
                abs(best[5] - ref[5]) <= SCORE_TOL:
            left.remove(best)
        elif ref[5] > CONF + SCORE_TOL:
            missing.append(("reference only", ref))
    return missing + [("ours only", o) for o in left if o[5] > CONF + SCORE_TOL]


class Outputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="vlm-cli-outputs-"))
        cls.photos = cls.tmp / "photos"
        cls.photos.mkdir()
        for photo in PHOTOS:
            shutil.copy(photo, cls.photos / photo.name)
        # The reference: yolov5's detect.py with the weights vlmserve loads (the YOLOv5n export, so both
        # letterbox to 640x640; detect.py's rectangular letterbox applies to .pt checkpoints only).
        export_yolo.prepare_yolov5()
        from yolov5 import detect as yolov5_detect
        yolov5_detect.run(weights=str(MODEL), source=str(cls.photos), imgsz=(640, 640), conf_thres=CONF,
                          iou_thres=IOU, device="cpu", save_txt=True, save_conf=True, save_crop=True, nosave=True,
                          project=str(cls.tmp), name="yolov5", exist_ok=True)
        cls.ref = cls.tmp / "yolov5"
        cls.out = cls.tmp / "ours"
        proc = detect(cls.photos, "--model", MODEL, "--iou", IOU, "--conf", CONF, "--save-txt", cls.out / "labels",
                      "--save-conf", "--save-crop", cls.out / "crops")
        assert proc.returncode == 0, proc.stderr
        cls.records = {Path(r["path"]).name: r for r in records_of(proc)}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_label_files_match_yolov5_detect(self):
        ours = sorted(p.name for p in (self.out / "labels").iterdir())
        self.assertEqual(ours, sorted(f"{p.stem}.txt" for p in PHOTOS))
        ref_files = {p.name for p in (self.ref / "labels").iterdir()}
        compared = 0
        for name in ours:
            record = self.records[Path(name).stem + ".jpg"]
            size = (record["width"], record["height"])
            mine = read_labels(self.out / "labels" / name, *size)
            # detect.py writes no file for an image without detections; ours writes an empty one.
            theirs = read_labels(self.ref / "labels" / name, *size) if name in ref_files else []
            self.assertEqual(unmatched(mine, theirs), [], name)
            self.assertEqual(len(mine), len(record["detections"]))
            compared += len(theirs)
        self.assertGreaterEqual(compared, 15)

    def test_label_files_without_save_conf_have_five_columns(self):
        labels = self.tmp / "labels-no-conf"
        proc = detect(self.photos / "bus.jpg", "--model", MODEL, "--save-txt", labels)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = (labels / "bus.txt").read_text().splitlines()
        self.assertEqual(len(lines), len(records_of(proc)[0]["detections"]))
        self.assertTrue(all(len(line.split()) == 5 for line in lines))

    def test_crops_match_yolov5_layout_and_size(self):
        def crops(root):
            return {str(p.relative_to(root)): p for p in root.rglob("*.jpg")}
        mine, theirs = crops(self.out / "crops"), crops(self.ref / "crops")
        # Crop file names number detections of a class in score order on both sides, so a pair of one
        # class with near-equal scores may swap numbers; the class folders and counts must agree.
        self.assertEqual(sorted(Path(k).parent.name for k in mine), sorted(Path(k).parent.name for k in theirs))
        self.assertIn("bus/bus.jpg", mine)
        for key in set(mine) & set(theirs):
            a, b = cv2.imread(str(mine[key])), cv2.imread(str(theirs[key]))
            if abs(a.shape[0] - b.shape[0]) > 2 or abs(a.shape[1] - b.shape[1]) > 2:
                siblings = [cv2.imread(str(p)).shape[:2] for k, p in theirs.items() if Path(k).parent == Path(key).parent]
                self.assertTrue(any(abs(s[0] - a.shape[0]) <= 2 and abs(s[1] - a.shape[1]) <= 2 for s in siblings), key)

    def test_coco_output_loads_in_pycocotools_and_evaluates_as_yolov5(self):
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        from ultralytics.data.converter import coco80_to_coco91_class
        import yaml
        coco8 = sorted((self.photos).glob("0000*.jpg"))
        result_file = self.tmp / "coco.json"
        proc = detect(*coco8, "--model", MODEL, "--iou", IOU, "--format", "coco", "--out", result_file)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        ours = COCO(str(result_file))
        # Ground truth from coco8's YOLO labels, with COCO's category ids as Ultralytics maps them.
        names = yaml.safe_load((Path(sys.modules["ultralytics"].__file__).parent / "cfg/datasets/coco8.yaml").read_text())["names"]
        ids = coco80_to_coco91_class()
        self.assertEqual([(c["id"], c["name"]) for c in ours.dataset["categories"]],
                         [(ids[i], names[i]) for i in range(80)])
        gt = {"images": [], "annotations": [], "categories": ours.dataset["categories"]}
        for image_id, photo in enumerate(coco8, 1):
            h, w = cv2.imread(str(photo)).shape[:2]
            gt["images"].append({"id": image_id, "file_name": str(photo), "width": w, "height": h})
            for line in (ASSETS / "images/coco8/labels" / f"{photo.stem}.txt").read_text().splitlines():
                c, x, y, bw, bh = map(float, line.split())
                box = [(x - bw / 2) * w, (y - bh / 2) * h, bw * w, bh * h]
                gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id, "category_id": ids[int(c)],
                                          "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
        gt_file = self.tmp / "gt.json"
        gt_file.write_text(json.dumps(gt))
        truth = COCO(str(gt_file))
        id_of = {img["file_name"]: img["id"] for img in truth.dataset["images"]}
        self.assertEqual(sorted(img["file_name"] for img in ours.dataset["images"]), sorted(id_of))
        self.assertEqual(len(ours.dataset["annotations"]), sum(len(self.records[p.name]["detections"]) for p in coco8))

        def average_precision(results):
            evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
            return evaluation.stats[0], evaluation.stats[1]

        local = {img["id"]: id_of[img["file_name"]] for img in ours.dataset["images"]}
        mine = [dict(a, image_id=local[a["image_id"]]) for a in ours.dataset["annotations"]]
        theirs = []
        for photo in coco8:
            label_file = self.ref / "labels" / f"{photo.stem}.txt"
            h, w = cv2.imread(str(photo)).shape[:2]
            for c, x1, y1, x2, y2, s in (read_labels(label_file, w, h) if label_file.exists() else []):
                theirs.append({"image_id": id_of[str(photo)], "category_id": ids[c], "bbox": [x1, y1, x2 - x1, y2 - y1],
                               "score": s})
        ap, ap50 = average_precision(mine)
        ref_ap, ref_ap50 = average_precision(theirs)
        print(f"\ncoco8 mAP@[.5:.95] ours {ap:.4f} yolov5 detect.py {ref_ap:.4f}; mAP@.5 {ap50:.4f} / {ref_ap50:.4f}")
        self.assertGreater(ap50, 0.3)
        self.assertAlmostEqual(ap, ref_ap, delta=0.01)
        self.assertAlmostEqual(ap50, ref_ap50, delta=0.01)

    def test_csv_rows_are_the_jsonl_detections(self):
        blank = self.tmp / "blank.png"
        cv2.imwrite(str(blank), np.full((64, 96, 3), 127, np.uint8))
        broken = self.tmp / "broken, \"quoted\".jpg"
        broken.write_bytes((self.photos / "bus.jpg").read_bytes()[:500])
        proc = detect(self.photos / "bus.jpg", blank, broken, "--model", MODEL, "--iou", IOU, "--format", "csv")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        rows = list(csv.DictReader(io.StringIO(proc.stdout)))
        bus = [r for r in rows if r["path"].endswith("bus.jpg")]
        self.assertEqual(len(bus), len(self.records["bus.jpg"]["detections"]))
        for row, d in zip(bus, self.records["bus.jpg"]["detections"]):
            self.assertEqual((row["label"], int(row["class_id"]), row["width"], row["height"]),
                             (d["label"], d["class_id"], "810", "1080"))
            self.assertEqual([float(row[k]) for k in ("x1", "y1", "x2", "y2", "score")], [*d["box"], d["score"]])
        blank_rows = [r for r in rows if r["path"] == str(blank)]
        self.assertEqual([(r["width"], r["label"], r["error"]) for r in blank_rows], [("96", "", "")])
        broken_rows = [r for r in rows if r["path"] == str(broken)]
        self.assertEqual(len(broken_rows), 1)
        self.assertIn("truncated", broken_rows[0]["error"])

    def test_unknown_format_is_bad_usage(self):
        proc = detect(self.photos / "bus.jpg", "--model", MODEL, "--format", "xml")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--format must be jsonl, coco or csv, got 'xml'", proc.stderr)
        self.assertEqual(proc.stdout, "")


def write_video(path, fourcc, frames, fps):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), path
    for frame in frames:
        writer.write(frame)
    writer.release()


class Video(unittest.TestCase):
    FPS = 10.0

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="vlm-cli-video-"))
        # 10 frames from real photos (each held two frames), 640x480 as a camera writes them.
        frames = [cv2.resize(cv2.imread(str(p)), (640, 480)) for p in PHOTOS[:5] for _ in range(2)]
        cls.videos = {ext: cls.tmp / f"clip.{ext}" for ext in ("mp4", "avi", "mkv")}
        write_video(cls.videos["mp4"], "mp4v", frames, cls.FPS)
        write_video(cls.videos["avi"], "MJPG", frames, cls.FPS)
        write_video(cls.videos["mkv"], "XVID", frames, cls.FPS)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def decoded_frames(self, video):
        capture = cv2.VideoCapture(str(video))
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                return frames
            frames.append(frame)

    def test_frames_with_stride_equal_detections_on_the_decoded_frames(self):
        for ext, video in self.videos.items():
            with self.subTest(ext):
                annotated = self.tmp / f"annotated-{ext}"
                proc = detect(video, "--model", MODEL, "--vid-stride", "3", "--save-annotated", annotated)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                records = records_of(proc)
                self.assertEqual([r["frame"] for r in records], [0, 3, 6, 9])
                for r in records:
                    self.assertAlmostEqual(r["timestamp_s"], r["frame"] / self.FPS, delta=1e-3)
                    self.assertEqual((r["path"], r["width"], r["height"]), (str(video), 640, 480))
                # The same frames decoded by the reference cv2, as PNG files through the CLI.
                stills = self.tmp / f"stills-{ext}"
                stills.mkdir()
                decoded = self.decoded_frames(video)
                self.assertEqual(len(decoded), 10)
                for index in (0, 3, 6, 9):
                    cv2.imwrite(str(stills / f"{index}.png"), decoded[index])
                still_records = records_of(detect(*[stills / f"{i}.png" for i in (0, 3, 6, 9)], "--model", MODEL))
                for frame_record, still_record in zip(records, still_records):
                    self.assertEqual(frame_record["detections"], still_record["detections"], frame_record["frame"])
                self.assertTrue(any(r["detections"] for r in records))
                written = Path(records[0]["annotated"])
                self.assertEqual(written, annotated / "clip.mp4")
                self.assertEqual(len(self.decoded_frames(written)), 4)
                capture = cv2.VideoCapture(str(written))
                self.assertAlmostEqual(capture.get(cv2.CAP_PROP_FPS), self.FPS / 3, delta=0.01)

    def test_labels_of_frames_are_named_by_frame(self):
        labels = self.tmp / "frame-labels"
        proc = detect(self.videos["mp4"], "--model", MODEL, "--vid-stride", "5", "--save-txt", labels)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(sorted(p.name for p in labels.iterdir()), ["clip_0.txt", "clip_5.txt"])

    def test_bad_videos_are_recorded_and_the_run_goes_on(self):
        garbage = self.tmp / "garbage.mp4"
        garbage.write_bytes(os.urandom(4096))
        empty = self.tmp / "empty.avi"
        empty.write_bytes(b"")
        proc = detect(garbage, empty, ASSETS / "images" / "bus.jpg", "--model", MODEL)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        by_name = {Path(r["path"]).name: r for r in records_of(proc)}
        self.assertEqual(by_name["garbage.mp4"]["error"]["code"], "unreadable_video")
        self.assertEqual(by_name["empty.avi"]["error"]["code"], "empty_input")
        self.assertIn("bus", [d["label"] for d in by_name["bus.jpg"]["detections"]])
        self.assertIn("garbage.mp4", proc.stderr)

    def test_folders_hold_videos_too(self):
        folder = self.tmp / "mixed"
        folder.mkdir()
        shutil.copy(self.videos["avi"], folder / "clip.avi")
        shutil.copy(ASSETS / "images" / "bus.jpg", folder / "bus.jpg")
        proc = detect(folder, "--model", MODEL, "--vid-stride", "4")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual([(Path(r["path"]).name, r.get("frame")) for r in records_of(proc)],
                         [("bus.jpg", None), ("clip.avi", 0), ("clip.avi", 4), ("clip.avi", 8)])


class StdinGlobProgress(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="vlm-cli-inputs-"))
        (cls.tmp / "a" / "deeper").mkdir(parents=True)
        shutil.copy(ASSETS / "images" / "bus.jpg", cls.tmp / "a" / "bus.jpg")
        shutil.copy(ASSETS / "images" / "zidane.jpg", cls.tmp / "a" / "deeper" / "zidane.jpg")
        shutil.copy(ASSETS / "images" / "dog.jpg", cls.tmp / "a" / "dog.png.txt")
        cls.bus = records_of(detect(ASSETS / "images" / "bus.jpg", "--model", MODEL))[0]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_stdin_image_bytes(self):
        proc = detect("-", "--model", MODEL, stdin=(ASSETS / "images" / "bus.jpg").read_bytes())
        self.assertEqual(proc.returncode, 0, proc.stderr)
        record = records_of(proc)[0]
        self.assertEqual(record["path"], "-")
        self.assertEqual(record["detections"], self.bus["detections"])

    def test_empty_stdin_is_reported_and_other_inputs_go_on(self):
        proc = detect("-", ASSETS / "images" / "bus.jpg", "--model", MODEL, stdin=b"")
        self.assertEqual(proc.returncode, 1)
        records = records_of(proc)
        self.assertEqual(records[0]["error"]["code"], "empty_input")
        self.assertEqual(records[1]["detections"], self.bus["detections"])
        self.assertIn("standard input ('-') is empty", proc.stderr.decode())

    def test_glob_patterns_expand(self):
        for pattern, expected in [("a/*.jpg", ["a/bus.jpg"]), ("a/**/*.jpg", ["a/bus.jpg", "a/deeper/zidane.jpg"]),
                                  ("a/*/zid?ne.[j]pg", ["a/deeper/zidane.jpg"])]:
            proc = detect(self.tmp / pattern, "--model", MODEL)
            self.assertEqual(proc.returncode, 0, (pattern, proc.stderr))
            self.assertEqual([r["path"] for r in records_of(proc)], [str(self.tmp / e) for e in expected], pattern)

    def test_a_pattern_matching_nothing_is_reported_and_other_inputs_go_on(self):
        proc = detect(self.tmp / "a/*.webp", self.tmp / "a/bus.jpg", "--model", MODEL)
        self.assertEqual(proc.returncode, 1)
        records = records_of(proc)
        self.assertEqual(records[0]["error"]["code"], "not_found")
        self.assertIn("no image or video file matches the pattern", proc.stderr)
        self.assertEqual(records[1]["detections"], self.bus["detections"])

    def test_progress_bar_on_a_terminal_summary_line_otherwise(self):
        inputs = [ASSETS / "images" / "bus.jpg"] * 3
        primary, replica = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("VLM_")}
        proc = subprocess.Popen([BIN, "detect", *map(str, inputs), "--model", str(MODEL), "--batch", "1"],
                                stdout=subprocess.DEVNULL, stderr=replica, env=env)
        os.close(replica)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        self.assertEqual(proc.wait(timeout=300), 0)
        os.close(primary)
        text = seen.decode()
        self.assertIn("\r", text)
        self.assertRegex(text, r"3/3 100% \|#+\| \d+\.\d/s ETA 0:00")
        self.assertRegex(text, r"[12]/3 +\d+% \|")
        plain = detect(*inputs, "--model", MODEL)
        self.assertNotIn("\r", plain.stderr)
        summary = [line for line in plain.stderr.splitlines() if "3 images, 0 failed, in " in line]
        self.assertEqual(len(summary), 1, plain.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
