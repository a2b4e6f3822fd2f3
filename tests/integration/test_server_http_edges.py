"""HTTP edges of a real `vlmserve serve` with the audit log on: Expect: 100-continue on an
over-limit body, methods the HTTP library does not know, the OpenAPI document against what the
server refuses, the /think question limit in characters, /ready while the audit log cannot be
written, and what --help says about --api-key.

The full audit disk is simulated with RLIMIT_FSIZE (set on the running server with prlimit): the
next append fails with EFBIG, as a write on a full disk fails with ENOSPC (the server ignores
SIGXFSZ, so the write fails instead of killing it).
"""

import base64
import json
import os
import resource
import socket
import subprocess
import time
import unittest
from pathlib import Path

import jsonschema

from server_harness import (BIN, TMP, OpenApi, Server, image_bytes, parse_response, raw_request, responses,
                            run_tests)

SERVER = None
SPEC = None
AUDIT = TMP / "audit"
LIMIT = 1 << 20


def setUpModule():
    global SERVER, SPEC
    SPEC = OpenApi()
    os.chmod(TMP, 0o700)
    AUDIT.mkdir(mode=0o700)
    SERVER = Server("--max-body-mb", "1", "--audit-dir", str(AUDIT / "log"), "--audit-key-file",
                    str(AUDIT / "audit.key"), "--timeout-s", "120")


def tearDownModule():
    if SERVER:
        SERVER.stop()


def think(question, image="bus.jpg"):
    return SERVER.post("/think", files={"image": (image, image_bytes(image), "image/jpeg")},
                       data={"question": question})


class ExpectContinue(unittest.TestCase):
    def test_over_limit_body_gets_413_not_100(self):
        head = (f"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {LIMIT * 4}\r\n"
                "Expect: 100-continue\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", SERVER.port), timeout=10) as s:
            s.sendall(head)
            first = s.recv(65536)
        status, headers, body = parse_response(first)
        self.assertEqual(status, 413, first[:200])
        self.assertEqual(json.loads(body)["error"]["code"], "payload_too_large")
        self.assertTrue(headers["x-request-id"])

    def test_body_under_limit_gets_100_then_the_answer(self):
        data = image_bytes("bus.jpg")
        head = (f"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n"
                "Expect: 100-continue\r\nConnection: close\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", SERVER.port), timeout=30) as s:
            s.sendall(head)
            # httplib writes the status line and the blank line in two writes (two segments
            # with TCP_NODELAY): read up to the end of the interim response.
            interim = b""
            while not interim.endswith(b"\r\n\r\n") and (part := s.recv(1)):
                interim += part
            self.assertTrue(interim.startswith(b"HTTP/1.1 100"), interim)
            s.sendall(data)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        status, _, body = parse_response(out)
        self.assertEqual(status, 200, body[:300])
        self.assertTrue(json.loads(body)["detections"])


class UnknownMethods(unittest.TestCase):
    def test_unknown_method_on_a_known_path_is_405_with_allow(self):
        for method, path, allow in (("PROPFIND", "/detect", "POST"), ("FOO", "/health", "GET"),
                                    ("PATCH", "/think", "POST")):
            with self.subTest(method=method, path=path):
                raw = raw_request(SERVER.port, f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                status, headers, body = parse_response(raw)
                self.assertEqual(status, 405, raw[:300])
                self.assertEqual(headers["allow"], allow)
                self.assertEqual(json.loads(body)["error"]["code"], "method_not_allowed")

    def test_unknown_method_on_an_unknown_path_is_404(self):
        status, _, body = parse_response(raw_request(SERVER.port, b"FOO /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"))
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(body)["error"]["code"], "not_found")


class OpenApiAgreesWithRefusals(unittest.TestCase):
    """Each request the server refuses for an empty field must be invalid under the document too."""

    def request_schema(self, path, media_type):
        schema = SPEC.doc["paths"][path]["post"]["requestBody"]["content"][media_type]["schema"]
        if "$ref" in schema:
            schema = SPEC.doc["components"]["schemas"][schema["$ref"].split("/")[-1]]
        return schema

    def assert_schema_refuses(self, path, media_type, body):
        schema = self.request_schema(path, media_type)
        with self.assertRaises(jsonschema.ValidationError, msg=f"{path} {media_type} schema accepts {body}"):
            jsonschema.Draft202012Validator(schema).validate(body)

    def test_empty_image_and_question(self):
        image = base64.b64encode(image_bytes("bus.jpg")).decode()
        cases = [
            ("/detect", {"image": ""}),
            ("/detect", {"images": [""]}),
            ("/think", {"image": "", "question": "how many buses?"}),
            ("/think", {"image": image, "question": ""}),
        ]
        for path, body in cases:
            with self.subTest(path=path, body={k: (v[:8] if isinstance(v, str) else v) for k, v in body.items()}):
                r = SERVER.post(path, json=body)
                self.assertEqual(r.status_code, 400, r.text)
                self.assert_schema_refuses(path, "application/json", body)
        self.assert_schema_refuses("/think", "multipart/form-data", {"image": "x", "question": ""})
        r = SERVER.post("/think", files={"image": ("b.jpg", image_bytes("bus.jpg"), "image/jpeg")},
                        data={"question": ""})
        self.assertEqual(r.status_code, 400, r.text)
        params = {p["name"]: p["schema"] for p in SPEC.doc["paths"]["/think"]["post"]["parameters"]}
        with self.assertRaises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(params["question"]).validate("")


class QuestionLength(unittest.TestCase):
    def test_limit_counts_characters_not_bytes(self):
        question = "这张图片里有几辆公共汽车" * 16 + "？" * 8  # 200 characters, 600 bytes of UTF-8
        self.assertEqual(len(question), 200)
        r = think(question)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn(r.json()["outcome"], ("answered", "refused", "unanswerable", "inconclusive"))

    def test_over_the_limit_is_refused_and_counted_in_characters(self):
        r = think("公" * 501)
        self.assertEqual(r.status_code, 422, r.text)
        self.assertIn("501 characters", r.json()["error"]["message"])


class ReadyFollowsTheAuditLog(unittest.TestCase):
    def test_ready_is_503_while_the_audit_log_cannot_be_written(self):
        self.assertEqual(think("how many buses are there?").status_code, 200)
        self.assertEqual(SERVER.get("/ready").status_code, 200)
        active = AUDIT / "log" / "audit.jsonl"
        unlimited = resource.RLIM_INFINITY
        resource.prlimit(SERVER.proc.pid, resource.RLIMIT_FSIZE, (active.stat().st_size, unlimited))
        try:
            r = think("how many buses are there?")
            self.assertEqual(r.status_code, 503, r.text)
            self.assertEqual(r.json()["error"]["code"], "audit_unavailable")
            r = SERVER.get("/ready")
            self.assertEqual(r.status_code, 503, r.text)
            self.assertEqual(r.json()["error"]["code"], "audit_unavailable")
            self.assertIn("Retry-After", r.headers)
            self.assertEqual(SERVER.get("/health").status_code, 200)
        finally:
            resource.prlimit(SERVER.proc.pid, resource.RLIMIT_FSIZE, (unlimited, unlimited))
        # Space is back: readiness returns without waiting for a /think to succeed first.
        self.assertEqual(SERVER.get("/ready").status_code, 200)
        self.assertEqual(think("how many buses are there?").status_code, 200)


class Framing(unittest.TestCase):
    def test_pipelined_requests_are_all_answered_in_order(self):
        ids = ["pipe-1", "pipe-2", "pipe-3"]
        data = b"".join(f"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: {i}\r\n\r\n".encode() for i in ids)
        data += b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        start = time.monotonic()
        answers = responses(raw_request(SERVER.port, data))
        self.assertLess(time.monotonic() - start, 3)
        self.assertEqual([a[0] for a in answers], [200, 200, 200, 200])
        self.assertEqual([a[1]["x-request-id"] for a in answers[:3]], ids)
        self.assertEqual(json.loads(answers[3][2])["status"], "ready")

    def test_pipelined_post_bodies_are_kept_apart(self):
        body = image_bytes("bus.jpg")
        one = (f"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        answers = responses(raw_request(SERVER.port, one + one + b"GET /health HTTP/1.1\r\nHost: x\r\n"
                                                                  b"Connection: close\r\n\r\n", read_timeout=60))
        self.assertEqual([a[0] for a in answers], [200, 200, 200])
        self.assertEqual(json.loads(answers[0][2])["detections"], json.loads(answers[1][2])["detections"])

    def test_connection_closes_after_a_header_limit_400(self):
        # A request smuggled after an over-long header line must not run: the 400 ends the connection.
        smuggled = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Request-Id: smuggled\r\n\r\n"
        data = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20000 + b"\r\n" + smuggled
        start = time.monotonic()
        raw = raw_request(SERVER.port, data)
        self.assertLess(time.monotonic() - start, 3, "the server kept the connection open")
        answers = responses(raw)
        self.assertEqual([a[0] for a in answers], [400], raw[:500])
        self.assertEqual(answers[0][1]["connection"], "close")
        self.assertNotIn(b"smuggled", raw)

    def test_request_line_over_the_line_limit_gets_414_with_the_error_shape(self):
        # httplib's line reader gives up at 32 KiB as if the client had gone: there was no answer at all.
        for target_bytes in (20000, 100000):
            data = b"GET /health?" + b"a" * target_bytes + b" HTTP/1.1\r\nHost: x\r\n\r\n"
            start = time.monotonic()
            raw = raw_request(SERVER.port, data)
            self.assertLess(time.monotonic() - start, 3, "the server kept the connection open")
            answers = responses(raw)
            self.assertEqual([a[0] for a in answers], [414], raw[:300])
            error = json.loads(answers[0][2])["error"]
            self.assertEqual(error["code"], "uri_too_long")
            self.assertEqual(error["request_id"], answers[0][1]["x-request-id"])
            self.assertEqual(answers[0][1]["connection"], "close")
        self.assertEqual(SERVER.get("/health").status_code, 200)

    def test_connection_closes_after_any_error_response(self):
        data = (b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: after-error\r\n\r\n")
        start = time.monotonic()
        answers = responses(raw_request(SERVER.port, data))
        self.assertLess(time.monotonic() - start, 3)
        self.assertEqual([a[0] for a in answers], [415])


class ApiKeyHelp(unittest.TestCase):
    def test_help_says_the_flag_is_visible_in_ps_and_names_the_other_forms(self):
        out = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=60).stdout
        start = out.index("--api-key ")
        paragraph = out[start:out.index("\n  --", start)]
        for needle in ("visible to every local user in `ps`", "--api-key-file", "VLM_API_KEY"):
            self.assertIn(needle, paragraph)
        readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
        self.assertIn("visible to every local user in `ps`", readme)


if __name__ == "__main__":
    run_tests()
