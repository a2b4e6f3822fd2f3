"""Deeply nested and huge JSON bodies against every JSON route of a real `vlmserve serve`.

A body of nested arrays used to crash the process (recursive copy and dump of the parsed value);
each case here must get a clean 4xx in the route's error shape, and the server must answer /health
afterwards. The server runs with the audit log on so /think takes its JSON path too.
"""

import base64
import json
import os
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from server_harness import TMP, Server, image_bytes, run_tests  # noqa: E402

SERVER = None
JSON_ROUTES = ("/detect", "/think", "/v1/chat/completions")
MAX_DEPTH = 64  # the server's stated limit (docs/server.md)


def setUpModule():
    global SERVER
    audit = TMP / "audit"
    audit.mkdir(mode=0o700)
    os.chmod(TMP, 0o700)
    SERVER = Server("--max-body-mb", "24", "--audit-dir", str(audit / "log"), "--audit-key-file",
                    str(audit / "audit.key"), "--timeout-s", "60")


def tearDownModule():
    if SERVER:
        SERVER.stop()


def nested(depth, open_=b"[", close=b"]"):
    return open_ * depth + close * depth


def post_json(path, body):
    """Posts raw JSON bytes; returns (status, parsed body) or (None, None) when the connection dies."""
    import requests

    try:
        r = SERVER.post(path, data=body, headers={"Content-Type": "application/json"}, timeout=60)
    except requests.ConnectionError:
        return None, None
    return r.status_code, r.json()


class NestedJson(unittest.TestCase):
    def assert_refused(self, path, body, statuses=(400,)):
        status, answer = post_json(path, body)
        alive = SERVER.proc.poll() is None
        self.assertTrue(alive, f"server died on {len(body)} bytes to {path} (exit {SERVER.proc.poll()})")
        self.assertIn(status, statuses, answer)
        self.assertEqual(SERVER.get("/health", timeout=5).status_code, 200)
        if status == 200:
            return None
        self.assertEqual(set(answer), {"error"})
        # Routes under /v1/ answer in OpenAI's shape, with the same codes.
        shape = {"message", "type", "param", "code"} if path.startswith("/v1/") else {"code", "message", "request_id"}
        self.assertEqual(set(answer["error"]), shape)
        self.assertLess(len(answer["error"]["message"]), 400)
        return answer["error"]

    def test_nested_arrays_under_every_key(self):
        image = json.dumps(base64.b64encode(image_bytes("bus.jpg")).decode()).encode()
        for path in JSON_ROUTES:
            for key in (b"conf", b"question", b"unknown_key", b"image", b"images"):
                for depth in (100_000, 2_000_000):
                    with self.subTest(path=path, key=key, depth=depth):
                        body = b'{"image": ' + image + b', "' + key + b'": ' + nested(depth) + b"}"
                        if key == b"image":
                            body = b'{"image": ' + nested(depth) + b"}"
                        error = self.assert_refused(path, body)
                        self.assertEqual(error["code"], "bad_json")
                        self.assertIn(str(MAX_DEPTH), error["message"])

    def test_nested_objects(self):
        for path in JSON_ROUTES:
            with self.subTest(path=path):
                body = b'{"conf": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}"
                error = self.assert_refused(path, body)
                self.assertEqual(error["code"], "bad_json")

    def test_top_level_nesting(self):
        for path in JSON_ROUTES:
            with self.subTest(path=path):
                self.assertEqual(self.assert_refused(path, nested(1_000_000))["code"], "bad_json")

    def test_depth_at_the_limit_is_parsed(self):
        # 63 arrays inside the top-level object make 64 levels: parsed, then refused as a wrong type.
        image = json.dumps(base64.b64encode(image_bytes("bus.jpg")).decode()).encode()
        body = b'{"image": ' + image + b', "conf": ' + nested(MAX_DEPTH - 1) + b"}"
        error = self.assert_refused("/detect", body, statuses=(422,))
        self.assertEqual(error["code"], "invalid_argument")
        self.assertIn("conf must be a number in [0, 1], got an array of 1 item", error["message"])
        error = self.assert_refused("/detect", b'{"image": ' + image + b', "conf": ' + nested(MAX_DEPTH) + b"}")
        self.assertEqual(error["code"], "bad_json")

    def test_huge_flat_values_are_quoted_bounded(self):
        image = json.dumps(base64.b64encode(image_bytes("bus.jpg")).decode()).encode()
        flat_array = b"[" + b",".join([b"1"] * 2_000_000) + b"]"
        flat_object = b"{" + b",".join(b'"k%d": 1' % i for i in range(500_000)) + b"}"
        long_string = b'"' + b"x" * 8_000_000 + b'"'
        for path in JSON_ROUTES:
            for value in (flat_array, flat_object, long_string):
                for key in (b"conf", b"question", b"classes", b"model"):
                    with self.subTest(path=path, key=key, size=len(value)):
                        body = b'{"image": ' + image + b', "' + key + b'": ' + value + b"}"
                        # 2,000,000 class ids of 1 are a valid (if odd) filter on /detect.
                        valid = path == "/detect" and key == b"classes" and value is flat_array
                        self.assert_refused(path, body, statuses=(200,) if valid else (400, 404, 422))
            with self.subTest(path=path, key="8 MB name"):
                body = b'{"image": ' + image + b', "' + b"k" * 8_000_000 + b'": 1}'
                error = self.assert_refused(path, body, statuses=(422,))
                self.assertEqual(error["code"], "unknown_parameter")

    def test_many_keys(self):
        body = b"{" + b",".join(b'"k%d": [1]' % i for i in range(400_000)) + b"}"
        for path in JSON_ROUTES:
            with self.subTest(path=path):
                self.assert_refused(path, body, statuses=(400, 422))

    def test_server_still_serves_images(self):
        r = SERVER.post("/detect", data=image_bytes("bus.jpg"), headers={"Content-Type": "image/jpeg"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertTrue(r.json()["detections"])


if __name__ == "__main__":
    run_tests()
