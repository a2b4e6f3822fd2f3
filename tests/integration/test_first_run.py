"""The README's first command on a machine with no model and no network, followed exactly as a user would.

In a scratch checkout with no network (scratch_checkout.py: laid out as a fresh clone, nothing rebuilt),
it runs `scripts/run.sh detect photos/ --out results.jsonl --iou 0.45` and requires: exit 2, at most 10 lines, no
Python traceback, and advice naming scripts/export_yolo.sh. It then runs every advised command exactly as
printed (each indented line, through bash, from the same folder) and compares the detections they write
with the yolov5 package's own on the same photos, at test_yolo_parity.py's tolerances (boxes within 1 px,
scores within 1e-3, one to one). `--iou 0.45` only matches the reference's NMS setting (the CLI default is
0.7). Also: a second run with nothing to rebuild prints only vlmserve's own lines, the `.pt` refusal of
`vlmserve detect` names the same export command, the helper exports an Ultralytics checkpoint (YOLOv8n
saved by the package) that vlmserve loads, and the helper's input errors are one line each.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ["VLM_TEST_DATA"])
sys.path.insert(0, str(ROOT / "tests" / "parity"))
import scratch_checkout  # noqa: E402
from scratch_checkout import ASSETS, BIN, offline_env  # noqa: E402
from test_yolo_parity import match  # noqa: E402

PHOTOS = ("bus.jpg", "zidane.jpg")
FIRST_COMMAND = "scripts/run.sh detect photos/ --out results.jsonl --iou 0.45"
MAX_LINES = 10


def shell(command, cwd, timeout=600):
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=offline_env(), capture_output=True, text=True,
                          timeout=timeout)


def normalized(lines):
    return [re.sub(r"\d+", "N", line) for line in lines]


class FirstRunOffline(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="vlm-first-run-"))
        cls.repo = scratch_checkout.make(cls.tmp, PHOTOS)
        cls.assets_before = sorted(os.listdir(ASSETS / "models"))
        cls.first = shell(FIRST_COMMAND, cls.repo)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def advised(self):
        return [line.strip() for line in self.first.stderr.splitlines() if line.startswith("  ")]

    def test_offline_first_run_is_short_advice_that_works_as_printed(self):
        first = self.first
        output = (first.stdout + first.stderr).splitlines()
        print(f"$ {FIRST_COMMAND}\n" + first.stderr)
        self.assertEqual(first.returncode, 2)
        self.assertLessEqual(len(output), MAX_LINES, "run.sh printed too much")
        self.assertNotIn("Traceback", first.stderr)
        advised = self.advised()
        self.assertEqual(len(advised), 2, "expected an export command and a run command")
        self.assertTrue(advised[0].startswith("scripts/export_yolo.sh "), advised[0])
        self.assertTrue(advised[1].startswith("scripts/run.sh detect photos/ --out results.jsonl --iou 0.45 --model "))

        for command in advised:
            proc = shell(command, self.repo)
            print(f"$ {command}\n{proc.stdout}{proc.stderr}")
            self.assertEqual(proc.returncode, 0, f"{command}\n{proc.stderr}")
            self.assertNotIn("Traceback", proc.stderr)
        self.assertEqual(sorted(os.listdir(ASSETS / "models")), self.assets_before, "export wrote beside the weights")
        self.assertEqual(sorted(p.name for p in (self.repo / "models").iterdir()), ["yolov5n.torchscript"])

        reference = json.loads((DATA / "reference_yolov5n.json").read_text())
        self.assertEqual(reference["settings"]["iou"], 0.45)
        records = {Path(r["path"]).name: r for r in map(json.loads, (self.repo / "results.jsonl").read_text().splitlines())}
        self.assertEqual(sorted(records), sorted(PHOTOS))
        for name in PHOTOS:
            rows = reference["images"][str(Path(os.environ["VLM_ASSETS"]) / "images" / name)]
            problems, flips, box_err, score_err = match(rows, records[name]["detections"], 1.0, 1e-3,
                                                        reference["settings"]["iou"])
            print(f"{name}: {len(rows)} reference detections, worst box error {box_err:.4f} px, score {score_err:.2e}")
            self.assertEqual(problems + flips, [], name)
        labels = [d["label"] for d in records["bus.jpg"]["detections"]]
        self.assertIn("bus", labels)
        self.assertGreaterEqual(labels.count("person"), 3)

        # Nothing left to set up or build: only vlmserve's own log lines, as when it runs alone.
        again = shell(advised[1].replace("results.jsonl", "again.jsonl"), self.repo)
        self.assertEqual(again.returncode, 0, again.stderr)
        model = self.repo / "models" / "yolov5n.torchscript"
        alone = subprocess.run([BIN, "detect", "photos/", "--out", "alone.jsonl", "--iou", "0.45", "--model", str(model)],
                               cwd=self.repo, env=offline_env(), capture_output=True, text=True, timeout=300)
        self.assertEqual(normalized(again.stderr.replace(str(model), "MODEL").replace("models/yolov5n.torchscript",
                                                                                    "MODEL").splitlines()),
                         normalized(alone.stderr.replace(str(model), "MODEL").splitlines()))

    def test_pt_refusal_names_the_same_export_command(self):
        weights = ASSETS / "models" / "yolov5n.pt"
        proc = subprocess.run([BIN, "detect", "photos/bus.jpg", "--model", str(weights)], cwd=self.repo,
                              env=offline_env(), capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 2)
        commands = re.findall(r"`([^`]*)`", proc.stderr)
        self.assertEqual(len(commands), 1, proc.stderr)
        argv = shlex.split(commands[0])
        self.assertEqual(argv[0], "scripts/export_yolo.sh")
        self.assertEqual(Path(argv[1]).resolve(), weights.resolve())
        advised = shlex.split(self.advised()[0])
        self.assertEqual(Path(self.repo / advised[1]).resolve(), weights.resolve())

    def test_export_helper_takes_ultralytics_checkpoints(self):
        # A YOLOv8n checkpoint as Ultralytics saves it (random weights: built from the yaml, no download).
        weights = self.tmp / "checkpoints" / "v8n.pt"
        weights.parent.mkdir()
        save = f"from ultralytics import YOLO; YOLO('yolov8n.yaml').save({str(weights)!r})"
        subprocess.run([sys.executable, "-c", save], check=True, env=offline_env(), capture_output=True, timeout=300)
        proc = shell(shlex.join(["scripts/export_yolo.sh", str(weights), "--out", "exports/"]), self.repo, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(sorted(os.listdir(weights.parent)), ["v8n.pt"], "export wrote beside the weights")
        exported = self.repo / "exports" / "v8n.torchscript"
        self.assertEqual(self.repo / proc.stdout.strip(), exported)
        detect = subprocess.run([BIN, "detect", "photos/bus.jpg", "--model", str(exported)], cwd=self.repo,
                                env=offline_env(), capture_output=True, text=True, timeout=300)
        self.assertEqual(detect.returncode, 0, detect.stderr)
        self.assertIn("(80 classes, 640x640", detect.stderr)

    def test_export_helper_input_errors_are_one_line(self):
        for args, needle in [(["photos/bus.jpg"], "not a PyTorch checkpoint"),
                             (["photos/missing.pt"], "no such file"),
                             ([str(ASSETS / "models" / "yolov5n.pt"), "--out", "photos/bus.jpg/models"], "cannot write to")]:
            proc = shell(shlex.join(["scripts/export_yolo.sh", *args]), self.repo, timeout=120)
            self.assertEqual(proc.returncode, 2, args)
            self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
            self.assertIn(needle, proc.stderr)


if __name__ == "__main__":
    unittest.main()
