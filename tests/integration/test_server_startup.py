"""Start-up: a port already in use is an error naming the port (no second server sharing it), and a
--classes id the model does not have stops the start naming its range.

Whether warm-up at load makes the first request and the first batch of a new size as fast as the
ones after is a latency claim, measured on the GPU by bench/yolo/first_pass.py (on the CPU the
stall it removes is only 1.3-1.6x, within the noise of a shared 2-core machine)."""

import subprocess
import unittest

from server_harness import BIN, MODEL, Server, run_tests


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


if __name__ == "__main__":
    run_tests()
