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

    def test_serve_listens_while_a_hub_model_downloads(self):
        """`serve --model NAME=hf://...` listens first and fetches in the loading phase: /health answers
        "loading" (200) and /ready 503 while the weights arrive over a throttled link, then the served
        model gives the local file's detections. A malformed spec is refused before listening."""
        import re
        import threading
        import time
        import urllib.error
        import urllib.request

        export = DATA / "yolov5n.torchscript"
        self.assertTrue(export.is_file(), f"{export} missing: the yolo_fixtures test makes it")
        work = Path(tempfile.mkdtemp(dir=DATA))
        hub = Emulator([Repo("ultralytics/yolov5n-export", {"README.md": b"export",
                                                             "yolov5n.torchscript": export.read_bytes()})])
        # ~4 s for the 8 MB export: long enough to probe the server mid-download.
        hub.faults.bytes_per_second = 2 * 1024 * 1024
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "VLM_"))}
        env.update(HOME=str(work), VLM_CACHE=str(work / "cache"), HF_HUB_CACHE=str(work / "hf"), HF_ENDPOINT=hub.url())
        proc = None
        try:
            bad = subprocess.run([VLM_BIN, "serve", "--model", "yolo=hf://no-repo-part", "--port", "0"], env=env,
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(bad.returncode, 2, bad.stderr)
            self.assertNotIn("listening on", bad.stderr)
            self.assertIn("hf://no-repo-part", bad.stderr)

            proc = subprocess.Popen([VLM_BIN, "serve", "--model", "yolo=hf://ultralytics/yolov5n-export",
                                     "--host", "127.0.0.1", "--port", "0"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, errors="replace")
            lines, port = [], []
            found = threading.Event()

            def pump():
                for line in proc.stderr:
                    lines.append(line)
                    m = re.search(r"listening on http://[^:]+:(\d+)", line)
                    if m and not port:
                        port.append(int(m.group(1)))
                        found.set()
                found.set()

            threading.Thread(target=pump, daemon=True).start()
            self.assertTrue(found.wait(60) and port, "".join(lines))
            base = f"http://127.0.0.1:{port[0]}"

            def get(path):
                try:
                    with urllib.request.urlopen(base + path, timeout=10) as r:
                        return r.status, json.loads(r.read())
                except urllib.error.HTTPError as e:
                    return e.code, json.loads(e.read())

            deadline = time.time() + 30
            while not hub.requests("cdn", "GET"):  # the weights are on their way (about 4 s more)
                self.assertLess(time.time(), deadline, "".join(lines))
                time.sleep(0.05)
            status, body = get("/health")
            self.assertEqual((status, body["status"]), (200, "loading"))
            self.assertEqual(get("/ready")[0], 503)
            deadline = time.time() + 120
            while get("/ready")[0] != 200:
                self.assertIsNone(proc.poll(), "".join(lines))
                self.assertLess(time.time(), deadline, "".join(lines))
                time.sleep(0.2)

            image = ASSETS / "images" / "bus.jpg"
            request = urllib.request.Request(base + "/detect", data=image.read_bytes(),
                                             headers={"Content-Type": "image/jpeg"})
            with urllib.request.urlopen(request, timeout=60) as r:
                served = json.loads(r.read())["detections"]
            local = subprocess.run([VLM_BIN, "detect", str(image), "--model", f"yolo={export}"], env=env,
                                   capture_output=True, text=True, timeout=300)
            self.assertEqual(local.returncode, 0, local.stderr)
            self.assertGreater(len(served), 0)
            self.assertEqual(served, json.loads(local.stdout.splitlines()[0])["detections"])
        finally:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
            hub.stop()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
