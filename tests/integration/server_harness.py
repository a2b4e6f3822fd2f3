"""Starts a real `vlmserve serve` on loopback for black-box tests, one per test module.

The server binds port 0 and the harness reads the port from its 'listening on' log line, so test
modules can run in parallel. Nothing here fakes the server: every test talks HTTP to the binary.
"""

import http.client
import json
import os
import re
import select
import signal
import socket
import ssl
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

    def rss_kb(self, field="VmRSS"):
        """The server's resident memory in KiB: all of it (VmRSS), or one part, e.g. RssAnon (heap and
        stacks, without the shared libraries' pages)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
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


def tls_certificate():
    """A self-signed certificate for 127.0.0.1 from the openssl CLI, made once per test process: (cert, key)."""
    cert, key = TMP / "cert.pem", TMP / "key.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
    return cert, key


def tls_client(cert):
    """A client context that trusts `cert` and checks the server's name, as any HTTPS client would."""
    return ssl.create_default_context(cafile=str(cert))


def connect(port, source="127.0.0.1", timeout=10, tls=None):
    """A connection from `source`; with `tls` (a client context) its handshake is done."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    return tls.wrap_socket(sock, server_hostname="127.0.0.1") if tls else sock


def raw_request(port, data, read_timeout=10, shutdown_write=False, chunks=None, delay=0.0, tls=None):
    """Sends bytes over a socket (over TLS with `tls`, a client context) and returns everything the
    server answered."""
    with connect(port, timeout=read_timeout, tls=tls) as sock:
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
        except (ConnectionResetError, socket.timeout, ssl.SSLError):
            pass
        return out


def responses(raw):
    """Every (status, headers, body) in a byte stream of back-to-back responses with Content-Length."""
    out = []
    while raw.startswith(b"HTTP/1."):
        status, headers, body = parse_response(raw)
        out.append((status, headers, body))
        raw = raw[raw.index(b"\r\n\r\n") + 4 + int(headers.get("content-length", 0)):]
    return out


def probe(server, paths, seconds, limit_s, source="127.0.0.1", tls=None):
    """Probes `paths` in turn every 0.1 s, each on a fresh connection from `source` (over TLS with
    `tls`, a client context) as a kubelet or a Prometheus scrape would; returns (path, status or
    error, seconds)."""
    out = []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        path = paths[i % len(paths)]
        i += 1
        start = time.monotonic()
        if tls:
            conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=limit_s, source_address=(source, 0),
                                               context=tls)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=limit_s, source_address=(source, 0))
        try:
            conn.request("GET", path)
            status = conn.getresponse().status
        except OSError as e:
            status = type(e).__name__
        finally:
            conn.close()
        out.append((path, status, time.monotonic() - start))
        time.sleep(0.1)
    return out


class SlowHeaders:
    """`count` connections from `source` that send `payload` (a request line and headers unless
    given) one byte every 0.5 s; each records when the server first answered or closed it. With
    `tls` (a client context) each finishes its handshake first and dribbles over TLS. One thread
    serves them all: a TLS connection must not be read and written from two threads at once."""

    REQUEST = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 200 + b"\r\n\r\n"

    def __init__(self, port, source, count, payload=REQUEST, tls=None):
        self.payload = payload
        self.opened = []
        self.ended = {}
        self.answers = {}
        self._stop = threading.Event()
        for _ in range(count):
            sock = connect(port, source, timeout=30, tls=tls)
            sock.setblocking(False)
            self.opened.append((sock, time.monotonic()))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _end(self, sock):
        try:
            data = sock.recv(4096)
        except (ssl.SSLWantReadError, BlockingIOError):
            return  # TLS records that carry no data (TLS 1.3 session tickets)
        except OSError:
            data = b""
        self.answers[sock] = data
        self.ended[sock] = time.monotonic()

    def _run(self):
        for i in range(len(self.payload)):
            tick = time.monotonic() + 0.5
            while time.monotonic() < tick:
                if self._stop.is_set():
                    return
                live = [sock for sock, _ in self.opened if sock not in self.ended]
                if not live:
                    time.sleep(0.05)
                    continue
                for sock in select.select(live, [], [], 0.05)[0]:
                    self._end(sock)
            for sock, _ in self.opened:
                if sock not in self.ended:
                    try:
                        sock.send(self.payload[i:i + 1])
                    except (ssl.SSLWantWriteError, BlockingIOError):
                        pass
                    except OSError:
                        self.answers[sock] = b""
                        self.ended[sock] = time.monotonic()

    def close(self):
        self._stop.set()
        self._thread.join()
        for sock, _ in self.opened:
            sock.close()


class WrkLoad:
    """Debian's wrk posting `image` to /detect over `connections` keep-alive connections for `seconds`
    (tests/integration/wrk_detect.lua); started at once. result() waits for it and returns its
    figures: counts by status (and error code), 503s without Retry-After, socket errors, p50/p99 ms."""

    SCRIPT = Path(__file__).with_name("wrk_detect.lua")

    def __init__(self, server, connections, seconds, image="bus.jpg"):
        self.seconds = seconds
        env = dict(os.environ, VLM_WRK_IMAGE=str(IMAGES / image))
        self.proc = subprocess.Popen(["wrk", "--threads", str(min(2, connections)), "--connections", str(connections),
                                      "--duration", f"{seconds:g}s", "--timeout", "30s", "--script", str(self.SCRIPT),
                                      server.base + "/detect"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)

    def result(self):
        out, _ = self.proc.communicate(timeout=self.seconds + 60)
        for line in out.splitlines():
            if line.startswith("VLM_WRK "):
                return json.loads(line[len("VLM_WRK "):])
        raise RuntimeError("wrk printed no figures:\n" + out)


class RssSampler:
    """The server's resident memory every 50 ms from construction to stop(): {field: peak KiB} for each
    of `fields` (see Server.rss_kb)."""

    def __init__(self, server, fields=("VmRSS",)):
        self.peak_kb = {field: server.rss_kb(field) for field in fields}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(server,), daemon=True)
        self._thread.start()

    def _run(self, server):
        while not self._stop.wait(0.05):
            for field, peak in self.peak_kb.items():
                self.peak_kb[field] = max(peak, server.rss_kb(field))

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak_kb


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
