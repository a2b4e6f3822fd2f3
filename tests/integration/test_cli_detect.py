"""Black-box tests of `vlmserve detect`: bad inputs are recorded and the run goes on, exit statuses,
--save-annotated, config/env options, --help and --version. Uses the YOLOv5n export from yolo_fixtures."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

ASSETS = Path(os.environ["VLM_ASSETS"])
DATA = Path(os.environ["VLM_TEST_DATA"])
BIN = os.environ["VLM_BIN"]
MODEL = DATA / "yolov5n.torchscript"


def detect(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VLM_")}
    full_env.update(env or {})
    return subprocess.run([BIN, "detect", *map(str, args)], capture_output=True, text=True, timeout=300, env=full_env)


class DetectCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="vlm-cli-"))
        photos = cls.tmp / "photos"
        (photos / "nested").mkdir(parents=True)
        shutil.copy(ASSETS / "images" / "bus.jpg", photos / "bus.jpg")
        shutil.copy(ASSETS / "images" / "zidane.jpg", photos / "nested" / "zidane.jpg")
        data = (ASSETS / "images" / "dog.jpg").read_bytes()
        (photos / "truncated.jpg").write_bytes(data[: len(data) // 3])
        (photos / "empty.png").write_bytes(b"")
        (photos / "notes.txt").write_text("not an image, and not an image extension: skipped")
        cls.photos = photos

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_bad_files_are_recorded_and_the_run_goes_on(self):
        out = self.tmp / "results.jsonl"
        missing = self.tmp / "missing.jpg"
        proc = detect(self.photos, missing, "--model", MODEL, "--out", out, "--batch", "2")
        self.assertEqual(proc.returncode, 1, proc.stderr)  # some inputs failed
        records = [json.loads(line) for line in out.read_text().splitlines()]
        by_name = {Path(r["path"]).name: r for r in records}
        self.assertEqual(sorted(by_name), ["bus.jpg", "empty.png", "missing.jpg", "truncated.jpg"])
        self.assertEqual(by_name["truncated.jpg"]["error"]["code"], "image_corrupt")
        self.assertEqual(by_name["empty.png"]["error"]["code"], "empty_input")
        self.assertEqual(by_name["missing.jpg"]["error"]["code"], "not_found")
        bus = by_name["bus.jpg"]
        self.assertEqual((bus["width"], bus["height"], bus["model"]), (810, 1080, "yolov5n"))
        labels = [d["label"] for d in bus["detections"]]
        self.assertIn("bus", labels)
        self.assertGreaterEqual(labels.count("person"), 3)
        for name in ("truncated.jpg", "empty.png", "missing.jpg"):
            self.assertIn(name, proc.stderr)
        # Results go to --out only; stdout stays empty.
        self.assertEqual(proc.stdout, "")

    def test_recursive_and_all_good_exit_zero_with_stdout(self):
        proc = detect(self.photos / "nested", "--model", MODEL, "--recursive")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        records = [json.loads(line) for line in proc.stdout.splitlines()]
        self.assertEqual([Path(r["path"]).name for r in records], ["zidane.jpg"])
        self.assertTrue(any(d["label"] == "person" for d in records[0]["detections"]))

    def test_folder_with_images_only_in_sub_folders_names_recursive(self):
        # photos/ itself holds images; its parent holds only the folder: the coco8 layout.
        proc = detect(self.tmp, "--model", MODEL)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(str(self.tmp), proc.stderr)
        self.assertIn("sub-folders", proc.stderr)
        self.assertIn("--recursive", proc.stderr)
        self.assertEqual(proc.stdout, "")
        # Also beside a good input: the folder was meant, so the run does not quietly skip it.
        proc = detect(self.photos / "bus.jpg", self.tmp, "--model", MODEL)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--recursive", proc.stderr)

    def test_no_input_images_at_all_is_a_usage_error(self):
        empty, text_only = self.tmp / "empty", self.tmp / "text-only"
        empty.mkdir(exist_ok=True)
        text_only.mkdir(exist_ok=True)
        (text_only / "notes.txt").write_text("no images here")
        for args in ([empty], [empty, text_only], [text_only, "--recursive"]):
            proc = detect(*args, "--model", MODEL)
            self.assertEqual(proc.returncode, 2, (args, proc.stderr))
            self.assertIn("no input images", proc.stderr)
            self.assertIn(str(args[0]), proc.stderr)
            self.assertNotIn("--recursive", proc.stderr)
            self.assertEqual(proc.stdout, "")

    def test_save_annotated_writes_images_with_boxes(self):
        annotated = self.tmp / "annotated"
        proc = detect(self.photos / "bus.jpg", "--model", MODEL, "--save-annotated", annotated)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        record = json.loads(proc.stdout)
        written = Path(record["annotated"])
        self.assertTrue(written.exists())
        self.assertNotEqual(written.read_bytes(), (self.photos / "bus.jpg").read_bytes())

    def test_options_from_env_and_config_with_flags_winning(self):
        config = self.tmp / "detect.json"
        config.write_text(json.dumps({"classes": [5], "max_det": 10}))
        proc = detect(self.photos / "bus.jpg", "--config", config, env={"VLM_MODEL": str(MODEL)})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual({d["label"] for d in json.loads(proc.stdout)["detections"]}, {"bus"})
        proc = detect(self.photos / "bus.jpg", "--config", config, "--classes", "0", env={"VLM_MODEL": str(MODEL)})
        self.assertEqual({d["label"] for d in json.loads(proc.stdout)["detections"]}, {"person"})
        config.write_text(json.dumps({"max_dets": 10}))
        proc = detect(self.photos / "bus.jpg", "--config", config, "--model", MODEL)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("max_dets", proc.stderr)

    def test_bad_usage_is_a_message_and_exit_two(self):
        for args, needle in [(["--conf", "1.5"], "conf"), (["--max-det", "0"], "--max-det must be an integer in [1, 10000]"),
                             (["--device", "tpu"], "device"), (["--batch", "x"], "batch"),
                             (["--classes", "0,80"], "the model has 80 classes (0..79)"),
                             (["--classes", "-1"], "classes")]:
            proc = detect(self.photos / "bus.jpg", "--model", MODEL, *args)
            self.assertEqual(proc.returncode, 2, args)
            self.assertIn(needle, proc.stderr)
        proc = detect(self.photos / "bus.jpg", "--model", ASSETS / "models" / "yolov5n.pt")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("export it to TorchScript", proc.stderr)
        proc = detect(self.photos / "bus.jpg")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--model is required", proc.stderr)

    def test_help_for_every_subcommand_and_version(self):
        for command in ("detect", "serve", "think", "audit", "pull"):
            proc = subprocess.run([BIN, command, "--help"], capture_output=True, text=True, timeout=60)
            self.assertEqual(proc.returncode, 0, command)
            self.assertIn("--", proc.stdout)
        detect_help = subprocess.run([BIN, "detect", "--help"], capture_output=True, text=True, timeout=60).stdout
        for typed in ("--conf FLOAT", "--iou FLOAT", "--max-det INT", "--batch INT", "--max-pixels FLOAT",
                      "--out TEXT", "--classes LIST"):
            self.assertIn(typed, detect_help)
        version = json.loads(subprocess.run([BIN, "--version"], capture_output=True, text=True, timeout=60).stdout)
        self.assertEqual(version["libtorch"], "2.11.0")
        self.assertIn("eager", version["attention_backends"])
        self.assertEqual("flash" in version["attention_backends"], version["cuda"]["compiled"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
