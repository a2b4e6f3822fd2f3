"""Starts a real `vlmserve serve` on loopback for black-box tests, one per test module.

The server binds port 0 and the harness reads the port from its 'listening on' log line, so test
modules can run in parallel. Nothing here fakes the server: every test talks HTTP to the binary.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
ASSETS = Path(os.environ.get("VLM_ASSETS", ROOT / ".." / "shared" / "assets"))
TEST_DATA = Path(os.environ.get("VLM_TEST_DATA", ROOT / "build" / "test-data"))
BIN = os.environ.get("VLM_BIN", str(ROOT / "build" / "cpu" / "cli" / "vlmserve"))
MODEL = TEST_DATA / "yolov5n.torchscript"
IMAGES = ASSETS / "images"


def skip_without_model():
    if not MODEL.exists():
        sys.exit(f"missing {MODEL}: run the yolo_fixtures test setup (tests/parity/yolo_fixtures.py) first")


class Server:
    """A running `vlmserve serve`; its log is collected for assertions on access-log lines."""

    def __init__(self, *args, env=None, api_key=None, scheme="http", ready_timeout=120):
        skip_without_model()
        self.api_key = api_key
        self.scheme = scheme
        self.log_lines = []
        self._log_lock = threading.Lock()
        cmd = [BIN, "serve", "--model", f"yolo={MODEL}", "--host", "127.0.0.1", "--port", "0", *args]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("VLM_") or k in ("VLM_ASSETS", "VLM_TEST_DATA")}
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full_env, text=True,
                                     errors="replace")
        self.port = None
        port_seen = threading.Event()

        def pump():
            for line in self.proc.stderr:
                with self._log_lock:
                    self.log_lines.append(line.rstrip("\n"))
                m = re.search(r"listening on https?://[^:]+:(\d+)", line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    port_seen.set()
            port_seen.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not port_seen.wait(60) or self.port is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "\n".join(self.log_lines))
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + "\n".join(self.log_lines))
            try:
                if requests.get(self.base + "/ready", timeout=2, verify=False).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server not ready in time:\n" + "\n".join(self.log_lines))

    def headers(self, extra=None):
        h = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        h.update(extra or {})
        return h

    def get(self, path, auth=True, **kw):
        kw.setdefault("timeout", 30)
        kw["headers"] = self.headers(kw.get("headers")) if auth else kw.get("headers", {})
        return requests.get(self.base + path, verify=False, **kw)

    def post(self, path, auth=True, **kw):
        kw.setdefault("timeout", 60)
        kw["headers"] = self.headers(kw.get("headers")) if auth else kw.get("headers", {})
        return requests.post(self.base + path, verify=False, **kw)

    def logs(self):
        with self._log_lock:
            return list(self.log_lines)

    def wait_for_log(self, pattern, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.logs():
                if re.search(pattern, line):
                    return line
            time.sleep(0.05)
        return None

    def rss_kb(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def terminate(self, sig=signal.SIGTERM, timeout=60):
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def raw_request(port, data, read_timeout=10, shutdown_write=False, chunks=None, delay=0.0):
    """Sends bytes over a plain socket and returns everything the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        try:
            sock.sendall(data)
            for chunk in chunks or []:
                if delay:
                    time.sleep(delay)
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse and close before we finish sending; its answer is still readable
        if shutdown_write:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        out = b""
        try:
            while True:
                part = sock.recv(65536)
                if not part:
                    break
                out += part
        except (ConnectionResetError, socket.timeout):
            pass
        return out


def parse_response(raw):
    """(status, headers dict with lower-case names, body bytes) of the first response in `raw`."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return status, headers, body


class OpenApi:
    """Validates real responses against server/openapi.json with jsonschema (JSON Schema 2020-12)."""

    def __init__(self):
        import jsonschema

        self.doc = json.loads((ROOT / "server" / "openapi.json").read_text())
        self.jsonschema = jsonschema

    def schema_for(self, path, method, status, content_type="application/json"):
        op = self.doc["paths"][path][method.lower()]
        responses = op["responses"]
        if str(status) not in responses:
            raise AssertionError(f"{method} {path} answered {status}, which the OpenAPI document does not list")
        response = responses[str(status)]
        if "$ref" in response:
            response = self.doc["components"]["responses"][response["$ref"].split("/")[-1]]
        return response["content"][content_type]["schema"], response

    def check(self, path, method, response):
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip()
        schema, spec = self.schema_for(path, method, response.status_code, ctype)
        for header in spec.get("headers", {}):
            if header.lower() in ("retry-after", "x-request-id"):
                assert header in response.headers, f"{method} {path} {response.status_code}: missing header {header}"
        if ctype == "application/json":
            wrapped = {"$ref": "urn:vlm-openapi#/components/schemas/__target__"}
            validator_schema = dict(schema)
            doc = dict(self.doc)
            doc["components"] = dict(doc["components"])
            doc["components"]["schemas"] = dict(doc["components"]["schemas"], __target__=validator_schema)
            from referencing import Registry, Resource
            import referencing.jsonschema

            registry = Registry().with_resource(
                "urn:vlm-openapi", Resource.from_contents(doc, default_specification=referencing.jsonschema.DRAFT202012))
            validator = self.jsonschema.Draft202012Validator(wrapped, registry=registry)
            validator.validate(response.json())


def image_bytes(name):
    return (IMAGES / name).read_bytes()


def run_tests():
    """unittest main that prints a closing 'N passed, N failed' line and sets the exit status."""
    import warnings

    warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    loader = unittest.TestLoader()
    loader.sortTestMethodsUsing = None
    suite = loader.loadTestsFromModule(sys.modules["__main__"])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(0 if result.wasSuccessful() else 1)


TMP = Path(tempfile.mkdtemp(prefix="vlm-server-test-"))
