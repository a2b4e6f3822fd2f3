"""Concurrency: 32 parallel clients get their own, correct results and share forward passes; an
overloaded server answers 503 with Retry-After and stays healthy; SIGTERM lets in-flight requests
finish and exits 0. Two servers: one batching, one with a tiny queue."""

import concurrent.futures as futures
import re
import signal
import time
import unittest

import requests

from server_harness import IMAGES, Server, run_tests

PHOTOS = sorted(IMAGES.glob("*.jpg")) + sorted((IMAGES / "coco8" / "images").glob("*.jpg"))


def post(server, data, **kw):
    return requests.post(server.base + "/detect", data=data, headers={"Content-Type": "image/jpeg"}, timeout=120, **kw)


def boxes(record):
    return [(d["class_id"], round(d["score"], 3), [round(v, 1) for v in d["box"]]) for d in record["detections"]]


def metrics(server):
    response = server.get("/metrics")
    assert response.status_code == 200, response.text
    return response.text


def metric(text, name, labels):
    m = re.search(re.escape(name) + r"\{" + re.escape(labels) + r"\} ([0-9.e+]+)", text)
    return float(m.group(1)) if m else 0.0


class Batching(unittest.TestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        # 32 clients on one loopback address: the per-peer cap (32 by default) would count the
        # metrics probe beside connections the server has not yet seen close.
        cls.server = Server("--batch-max", "8", "--batch-wait-ms", "50", "--queue", "64", "--threads", "2",
                            "--max-connections-per-peer", "64")
        cls.photos = [p.read_bytes() for p in PHOTOS]
        # Single-request answers, one at a time: the reference for the concurrent run.
        cls.single = [boxes(post(cls.server, data).json()) for data in cls.photos]

    @classmethod
    def tearDownClass(cls):
        if cls.server:
            cls.server.stop()

    def test_1_parallel_clients_get_their_own_results_and_share_batches(self):
        before = metrics(self.server)
        batches_before = metric(before, "vlm_batches_total", 'model="yolo"')
        jobs = [i % len(self.photos) for i in range(32)]
        with futures.ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda i: post(self.server, self.photos[i]), jobs))
        for i, r in zip(jobs, answers):
            self.assertEqual(r.status_code, 200, r.text)
            body = r.json()
            self.assertEqual(body["request_id"], r.headers["X-Request-Id"])
            # Batched letterboxing pads each image alike, so scores may move in the last digits only.
            got, want = boxes(body), self.single[i]
            self.assertEqual(len(got), len(want), PHOTOS[i].name)
            for (gc, gs, gb), (wc, ws, wb) in zip(got, want):
                self.assertEqual(gc, wc)
                self.assertAlmostEqual(gs, ws, delta=0.01)
                for a, b in zip(gb, wb):
                    self.assertAlmostEqual(a, b, delta=1.5)
        after = metrics(self.server)
        batches = metric(after, "vlm_batches_total", 'model="yolo"') - batches_before
        self.assertLess(batches, 32, "32 concurrent requests ran as 32 separate forward passes")
        # Some forward pass held more than one image: the <=1 bucket is below the total count.
        ones = metric(after, "vlm_batch_size_bucket", 'model="yolo",le="1"')
        total = metric(after, "vlm_batch_size_count", 'model="yolo"')
        self.assertLess(ones, total)

    def test_2_different_parameters_are_not_mixed(self):
        data = (IMAGES / "bus.jpg").read_bytes()
        wanted = [0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5]  # person, bus
        with futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda c: post(self.server, data, params={"classes": str(c)}), wanted))
        for c, r in zip(wanted, answers):
            dets = r.json()["detections"]
            self.assertTrue(dets)
            self.assertTrue(all(d["class_id"] == c for d in dets))

    def test_2b_clients_that_disconnect_leave_nothing_behind(self):
        import socket

        data = self.photos[0]
        head = (f"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()

        def detect_lines():
            return sum(1 for line in self.server.logs() if " POST /detect " in line)

        before = detect_lines()
        for _ in range(12):
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as s:
                s.sendall(head + data)  # and hang up without reading the answer
        # Every abandoned request reaches its end (run or cancelled) and is logged; then nothing is left.
        deadline = time.time() + 120
        while time.time() < deadline and detect_lines() < before + 12:
            time.sleep(0.2)
        self.assertGreaterEqual(detect_lines(), before + 12)
        # A request stays admitted until its response is written, just after its log line.
        while time.time() < deadline and "vlm_inference_requests_active 0" not in metrics(self.server):
            time.sleep(0.2)
        text = metrics(self.server)
        self.assertIn("vlm_inference_requests_active 0", text)
        self.assertIn('vlm_queue_depth{model="yolo"} 0', text)
        self.assertEqual(post(self.server, data).status_code, 200)

    def test_3_sigterm_finishes_in_flight_requests(self):
        with futures.ThreadPoolExecutor(8) as pool:
            pending = [pool.submit(post, self.server, self.photos[i % len(self.photos)]) for i in range(8)]
            time.sleep(0.3)
            self.server.proc.send_signal(signal.SIGTERM)
            results = [p.result() for p in pending]
        self.assertEqual(self.server.proc.wait(60), 0)
        # Requests that arrived before the signal completed; any after it were refused or never connected.
        self.assertTrue(any(r.status_code == 200 for r in results))
        for r in results:
            self.assertIn(r.status_code, (200, 503))
        log = "\n".join(self.server.logs())
        self.assertIn("draining", log)
        self.assertIn("stopped", log)


class Overload(unittest.TestCase):
    def test_full_queue_answers_503_with_retry_after_and_recovers(self):
        server = Server("--batch-max", "1", "--batch-wait-ms", "0", "--queue", "2", "--threads", "1", "--warmup", "1")
        try:
            data = (IMAGES / "bus.jpg").read_bytes()
            with futures.ThreadPoolExecutor(24) as pool:
                answers = list(pool.map(lambda _: post(server, data), range(24)))
            codes = [r.status_code for r in answers]
            self.assertIn(503, codes)
            self.assertIn(200, codes)
            for r in answers:
                if r.status_code == 503:
                    self.assertEqual(r.json()["error"]["code"], "queue_full")
                    self.assertEqual(r.headers["Retry-After"], "1")
            self.assertEqual(requests.get(server.base + "/health", timeout=5).json(), {"status": "ready"})
            self.assertEqual(post(server, data).status_code, 200)
            text = requests.get(server.base + "/metrics", timeout=5).text
            self.assertGreater(metric(text, "vlm_requests_rejected_total", 'model="yolo",reason="queue_full"'), 0)
        finally:
            self.assertEqual(server.terminate(), 0)


if __name__ == "__main__":
    run_tests()
