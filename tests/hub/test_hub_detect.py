"""`vlmserve detect --model NAME=hf://...` end to end: the YOLOv5n TorchScript export made by the
yolo_fixtures test is served by the loopback hub, and detect on a real photo must give exactly the
detections the same binary gives with the local file (the reference)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_emulator import Emulator, Repo, make_self_signed_cert  # noqa: E402

VLM_BIN = os.environ.get("VLM_BIN", "")
DATA = Path(os.environ.get("VLM_TEST_DATA", "build/test-data"))
ASSETS = Path(os.environ.get("VLM_ASSETS", "../shared/assets"))


class HubDetectTest(unittest.TestCase):
    def test_detect_with_a_hub_model_matches_the_local_file(self):
        export = DATA / "yolov5n.torchscript"
        self.assertTrue(export.is_file(), f"{export} missing: the yolo_fixtures test makes it")
        work = Path(tempfile.mkdtemp(dir=DATA))
        try:
            cert, key = make_self_signed_cert(work)
            hub = Emulator([Repo("ultralytics/yolov5n-export", {"README.md": b"export",
                                                                 "yolov5n.torchscript": export.read_bytes()})],
                           tls=(cert, key))
            try:
                env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "VLM_"))}
                env.update(HOME=str(work), VLM_CACHE=str(work / "cache"), HF_HUB_CACHE=str(work / "hf"),
                           HF_ENDPOINT=hub.url(), SSL_CERT_FILE=cert)
                image = str(ASSETS / "images" / "bus.jpg")

                def detect(model, extra_env=None):
                    result = subprocess.run([VLM_BIN, "detect", image, "--model", model],
                                            env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=300)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    record = json.loads(result.stdout.splitlines()[0])
                    return record["detections"], record["model"]

                local, _ = detect(f"yolo={export}")
                remote, name = detect("yolo=hf://ultralytics/yolov5n-export")
                self.assertEqual(name, "yolo")
                self.assertGreater(len(local), 0)
                self.assertEqual(remote, local)
                self.assertEqual(len(hub.requests("cdn", "GET")), 1)
                # Offline, the cached snapshot serves the same model with the hub gone.
                hub.stop()
                offline, _ = detect("yolo=hf://ultralytics/yolov5n-export", {"HF_HUB_OFFLINE": "1"})
                self.assertEqual(offline, local)
            finally:
                try:
                    hub.stop()
                except Exception:
                    pass
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
