"""Start-up: a port already in use is an error naming the port (no second server sharing it), a
--classes id the model does not have stops the start naming its range, and --image-decoder takes auto
or cpu only (flag, environment, config file) and, on the CPU, `auto` reports and serves with OpenCV
(the GPU half, nvJPEG against OpenCV on the same photos, is tests/gpu/test_server_nvjpeg.py).

Whether warm-up at load makes the first request and the first batch of a new size as fast as the
ones after is a latency claim, measured on the GPU by bench/yolo/first_pass.py (on the CPU the
stall it removes is only 1.3-1.6x, within the noise of a shared 2-core machine)."""

import json
import os
import subprocess
import tempfile
import unittest

from server_harness import BIN, IMAGES, MODEL, Server, run_tests


class PortInUse(unittest.TestCase):
    def test_second_server_on_the_same_port_exits_naming_the_port(self):
        first = Server("--warmup", "0")
        second = subprocess.Popen([BIN, "serve", "--model", f"yolo={MODEL}", "--host", "127.0.0.1", "--port",
                                   str(first.port), "--warmup", "0"], stderr=subprocess.PIPE, text=True)
        try:
            try:
                _, stderr = second.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                second.kill()
                _, stderr = second.communicate()
                self.fail(f"a second server started on port {first.port}, which the first one holds:\n{stderr}")
            self.assertNotEqual(second.returncode, 0, stderr)
            self.assertIn(f"port {first.port} is already in use", stderr)
            self.assertIn("--port", stderr)
            # The first server still answers every request: no port sharing.
            self.assertEqual(first.get("/health").status_code, 200)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
            first.stop()


class ServerOptionsAgainstTheModel(unittest.TestCase):
    def test_classes_outside_the_model_stop_the_start_naming_the_range(self):
        proc = subprocess.run([BIN, "serve", "--model", f"yolo={MODEL}", "--host", "127.0.0.1", "--port", "0",
                               "--warmup", "0", "--classes", "0,80"], capture_output=True, text=True, timeout=120)
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("classes: id 80 is out of range; the model has 80 classes (0..79)", proc.stderr)


class ImageDecoderOption(unittest.TestCase):
    def start(self, *args, env=None):
        return subprocess.run([BIN, "serve", "--model", f"yolo={MODEL}", "--host", "127.0.0.1", "--port", "0",
                               "--warmup", "0", *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, **(env or {})})

    def test_a_value_other_than_auto_or_cpu_is_bad_usage_from_every_source(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as config:
            json.dump({"image_decoder": "nvjpeg"}, config)
            config.flush()
            for args, env, got in ((["--image-decoder", "gpu"], None, "gpu"),
                                   ([], {"VLM_IMAGE_DECODER": "opencv"}, "opencv"),
                                   (["--config", config.name], None, "nvjpeg")):
                with self.subTest(got=got):
                    proc = self.start(*args, env=env)
                    self.assertEqual(proc.returncode, 2, proc.stderr)
                    self.assertIn(f"--image-decoder must be auto or cpu, got '{got}'", proc.stderr)

    def test_auto_on_the_cpu_decodes_with_opencv_and_says_so(self):
        for setting in ("auto", "cpu"):
            with self.subTest(setting=setting):
                server = Server("--warmup", "0", "--image-decoder", setting, "--device", "cpu")
                try:
                    models = server.get("/v1/models").json()["data"]
                    self.assertEqual([m["image_decoder"] for m in models], ["opencv"])
                    why = "--image-decoder cpu" if setting == "cpu" else "the model takes host images only"
                    self.assertTrue(any(f"images decoded by opencv ({why})" in line for line in server.log_lines),
                                    "\n".join(server.log_lines))
                    with open(IMAGES / "bus.jpg", "rb") as photo:
                        body = server.post("/detect", files={"image": photo}).json()
                    self.assertEqual((body["width"], body["height"]), (810, 1080))
                    self.assertIn("bus", [d["label"] for d in body["detections"]])
                finally:
                    server.stop()


if __name__ == "__main__":
    run_tests()
