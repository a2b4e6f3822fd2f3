"""Shutdown against a real `vlmserve serve` (YOLOv5n on loopback): SIGTERM with a slow upload open
exits within --drain-timeout-s + 5 s, still answers the request in flight (admitted, its body
still arriving) and writes the audit log's shutdown checkpoint.
"""

import json
import signal
import socket
import threading
import time
import unittest

from server_harness import TMP, Server, image_bytes, run_tests

DRAIN_S = 5.0
EXIT_GRACE_S = 5.0  # the bound docs/server.md states (kExitGrace in server/serve.cpp, plus 1 s)


class SlowUpload:
    """A POST that announces a big body and sends one byte every 0.3 s until the server hangs up."""

    def __init__(self, port, source="127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        self.sock.sendall(b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                          b"Content-Length: 1000000\r\n\r\n" + b"\xff" * 8)
        self.closed_by_server = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self):
        try:
            while True:
                time.sleep(0.3)
                self.sock.sendall(b"\x00")
        except OSError:
            self.closed_by_server.set()

    def close(self):
        self.sock.close()


class DrainBound(unittest.TestCase):
    def test_slow_upload_does_not_hold_exit_and_in_flight_request_is_answered(self):
        audit = TMP / "drain-audit"
        audit.mkdir(mode=0o700)
        server = Server("--drain-timeout-s", str(DRAIN_S), "--timeout-s", "30", "--audit-dir", str(audit / "log"),
                        "--audit-key-file", str(audit / "audit.key"))
        try:
            # One audited request, so the shutdown checkpoint has something to cover.
            think = server.post("/think", files={"image": ("bus.jpg", image_bytes("bus.jpg"), "image/jpeg")},
                                data={"question": "what is in the image?"})
            self.assertEqual(think.status_code, 200, think.text[:300])
            slow = SlowUpload(server.port)
            # A request admitted before the signal whose body is still on its way, and which can
            # finish within the drain: its last half comes 1 s after SIGTERM.
            data = image_bytes("bus.jpg")
            fast = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            fast.sendall(b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(data) + data[: len(data) // 2])
            time.sleep(1.0)  # its headers are parsed and it is admitted
            signalled = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            fast.sendall(data[len(data) // 2:])
            answer = b""
            while part := fast.recv(65536):
                answer += part
            fast.close()
            status = server.proc.wait(60)
            took = time.monotonic() - signalled
            slow.close()
        finally:
            server.stop()
        print(f"exit {status} after {took:.2f} s (drain {DRAIN_S} s + {EXIT_GRACE_S} s)")
        self.assertEqual(status, 0)
        self.assertLess(took, DRAIN_S + EXIT_GRACE_S)
        head, _, body = answer.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), answer[:300])
        self.assertTrue(json.loads(body)["detections"])
        records = [json.loads(line) for path in sorted((audit / "log").glob("audit*.jsonl"))
                   for line in path.read_text().splitlines()]
        self.assertEqual(records[-1]["type"], "checkpoint", "shutdown writes its audit checkpoint")


if __name__ == "__main__":
    run_tests()
