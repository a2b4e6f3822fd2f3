"""Limits from real malformed requests over raw sockets: over-limit bodies however they are sent,
a megabyte header line, ten thousand headers, compressed bodies, slowloris clients next to a probe
that must still be served, read timeouts, and TLS. One server for the module (1 MiB body limit)."""

import gzip
import json
import socket
import threading
import time
import unittest

import requests

from server_harness import Server, image_bytes, parse_response, raw_request, run_tests, tls_certificate

SERVER = None
LIMIT = 1 << 20


def setUpModule():
    global SERVER
    SERVER = Server("--max-body-mb", "1", "--read-timeout-s", "2", "--header-timeout-s", "2", "--http-threads", "4",
                    "--http-max-threads", "16", "--max-concurrent-requests", "8")


def tearDownModule():
    if SERVER:
        SERVER.stop()


def error_code(body):
    return json.loads(body)["error"]["code"]


class BodyLimits(unittest.TestCase):
    def test_content_length_over_limit_is_refused_before_reading(self):
        head = (f"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {LIMIT * 8}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", SERVER.port), timeout=10) as s:
            start = time.time()
            s.sendall(head + b"\xff" * 1024)
            first = s.recv(65536)  # the answer comes at once, without waiting for 8 MiB that never come
            elapsed = time.time() - start
        status, headers, body = parse_response(first)
        self.assertEqual(status, 413)
        self.assertEqual(error_code(body), "payload_too_large")
        self.assertTrue(headers["x-request-id"])
        self.assertLess(elapsed, 1.5)

    def test_chunked_over_limit_is_refused(self):
        head = b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunk = b"%x\r\n" % (256 << 10) + b"\xff" * (256 << 10) + b"\r\n"
        status, _, body = parse_response(raw_request(SERVER.port, head, chunks=[chunk] * 8 + [b"0\r\n\r\n"]))
        self.assertEqual(status, 413)
        self.assertEqual(error_code(body), "payload_too_large")

    def test_chunked_under_limit_is_served(self):
        data = image_bytes("person.jpg")
        head = b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        chunks = [b"%x\r\n" % len(data[i:i + 30000]) + data[i:i + 30000] + b"\r\n" for i in range(0, len(data), 30000)]
        status, _, body = parse_response(raw_request(SERVER.port, head, chunks=chunks + [b"0\r\n\r\n"]))
        self.assertEqual(status, 200, body)
        self.assertTrue(json.loads(body)["detections"])

    def test_body_without_length_over_limit_is_refused(self):
        # HTTP/1.0 style: no Content-Length, no chunking; the body ends when the client closes.
        head = b"POST /detect HTTP/1.0\r\nHost: x\r\nContent-Type: image/jpeg\r\n\r\n"
        status, _, body = parse_response(raw_request(SERVER.port, head, chunks=[b"\xff" * (256 << 10)] * 8,
                                                     shutdown_write=True))
        self.assertIn(status, (400, 413, 411))
        self.assertTrue(error_code(body))

    def test_compressed_body_is_refused_not_inflated(self):
        bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KiB
        r = requests.post(SERVER.base + "/detect", data=bomb, timeout=10,
                          headers={"Content-Type": "image/jpeg", "Content-Encoding": "gzip"})
        self.assertEqual(r.status_code, 415)
        self.assertEqual(r.json()["error"]["code"], "unsupported_media_type")
        self.assertIn("Content-Encoding", r.json()["error"]["message"])
        for encoding in ("deflate", "br", "zstd", "GZIP"):
            r = requests.post(SERVER.base + "/detect", data=b"x", timeout=10,
                              headers={"Content-Type": "image/jpeg", "Content-Encoding": encoding})
            self.assertEqual(r.status_code, 415, encoding)

    def test_smuggling_shapes_are_refused(self):
        both = (b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\n")
        self.assertEqual(parse_response(raw_request(SERVER.port, both))[0], 400)
        odd_te = b"POST /detect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
        self.assertEqual(parse_response(raw_request(SERVER.port, odd_te))[0], 415)


class HeaderLimits(unittest.TestCase):
    def test_megabyte_header_line_is_refused_with_bounded_memory(self):
        before = SERVER.rss_kb()
        raw = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
        status, _, body = parse_response(raw_request(SERVER.port, raw))
        self.assertEqual(status, 400)
        self.assertEqual(error_code(body), "bad_request")
        self.assertLess(SERVER.rss_kb() - before, 16 << 10)  # KiB: nowhere near buffering the line

    def test_ten_thousand_headers_are_refused(self):
        before = SERVER.rss_kb()
        raw = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(10000)) + b"\r\n"
        status, _, body = parse_response(raw_request(SERVER.port, raw))
        self.assertEqual(status, 400)
        self.assertEqual(error_code(body), "bad_request")
        self.assertLess(SERVER.rss_kb() - before, 16 << 10)

    def test_long_request_target_is_refused(self):
        raw = b"GET /health?" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        self.assertIn(parse_response(raw_request(SERVER.port, raw))[0], (400, 414))

    def test_server_still_healthy(self):
        self.assertEqual(requests.get(SERVER.base + "/health", timeout=5).status_code, 200)


class SlowClients(unittest.TestCase):
    def test_slowloris_does_not_block_a_probe(self):
        stop = threading.Event()
        socks = []

        def drip(sock):
            try:
                sock.sendall(b"POST /detect HTTP/1.1\r\nHost: x\r\n")
                while not stop.is_set():
                    sock.sendall(b"X")  # one header byte at a time, never finishing the line
                    stop.wait(0.5)
            except OSError:
                pass

        threads = []
        for _ in range(24):  # more than the 16 worker threads the server may use
            s = socket.create_connection(("127.0.0.1", SERVER.port), timeout=5)
            socks.append(s)
            t = threading.Thread(target=drip, args=(s,), daemon=True)
            t.start()
            threads.append(t)
        try:
            time.sleep(0.5)
            # Every worker is held by a dripping client now; the header deadline (2 s) frees them.
            start = time.time()
            self.assertEqual(requests.get(SERVER.base + "/health", timeout=20).status_code, 200)
            self.assertLess(time.time() - start, 8.0)  # at most two deadline rounds, not "never"
            probe = requests.post(SERVER.base + "/detect", data=image_bytes("person.jpg"),
                                  headers={"Content-Type": "image/jpeg"}, timeout=60)
            self.assertEqual(probe.status_code, 200)
        finally:
            stop.set()
            for s in socks:
                s.close()

    def test_dripping_client_is_cut_at_the_header_deadline(self):
        with socket.create_connection(("127.0.0.1", SERVER.port), timeout=15) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            start = time.time()
            closed = False
            while time.time() - start < 10:
                try:
                    s.sendall(b"a")  # well inside the 2 s read timeout each time
                except OSError:
                    closed = True
                    break
                s.settimeout(0.5)
                try:
                    if s.recv(65536) == b"":
                        closed = True
                        break
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
                    break
            self.assertTrue(closed)
            self.assertLess(time.time() - start, 6.0)  # --header-timeout-s 2, watchdog every 0.1 s

    def test_silent_client_is_dropped_after_read_timeout(self):
        with socket.create_connection(("127.0.0.1", SERVER.port), timeout=15) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and then nothing
            start = time.time()
            data = s.recv(65536)
            while data and not data.endswith(b"}"):
                more = s.recv(65536)
                if not more:
                    break
                data += more
            elapsed = time.time() - start
        self.assertLess(elapsed, 8.0)  # --read-timeout-s 2
        self.assertGreaterEqual(elapsed, 1.5)


class RequestDeadline(unittest.TestCase):
    def test_request_past_its_deadline_gets_503_timeout_and_the_server_goes_on(self):
        # 1 ms cannot cover decoding plus a forward pass on any machine: every /detect times out.
        server = Server("--timeout-s", "0.001", "--warmup", "0")
        try:
            r = requests.post(server.base + "/detect", data=image_bytes("person.jpg"),
                              headers={"Content-Type": "image/jpeg"}, timeout=60)
            self.assertEqual(r.status_code, 503, r.text)
            self.assertEqual(r.json()["error"]["code"], "timeout")
            self.assertEqual(r.headers["Retry-After"], "1")
            self.assertEqual(requests.get(server.base + "/health", timeout=5).json(), {"status": "ready"})
        finally:
            self.assertEqual(server.terminate(), 0)


class Tls(unittest.TestCase):
    def test_https_with_given_certificate(self):
        cert, key = tls_certificate()
        tls = Server("--ssl-cert-file", str(cert), "--ssl-key-file", str(key), "--warmup", "0", scheme="https")
        try:
            r = requests.get(tls.base + "/health", verify=str(cert), timeout=10)
            self.assertEqual(r.status_code, 200)
            r = tls.post("/detect", data=image_bytes("person.jpg"), headers={"Content-Type": "image/jpeg"})
            self.assertEqual(r.status_code, 200)
            with self.assertRaises(requests.RequestException):
                requests.get(f"http://127.0.0.1:{tls.port}/health", timeout=5).json()
        finally:
            self.assertEqual(tls.terminate(), 0)


if __name__ == "__main__":
    run_tests()
