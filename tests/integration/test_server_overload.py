"""Overload, slow clients and shutdown against a real `vlmserve serve` (YOLOv5n on loopback): SIGTERM
with a slow upload open exits within --drain-timeout-s + 5 s and still answers the request in
flight (admitted, its body still arriving); Debian's wrk at 5x the server's capacity (what the
batcher holds: the running batch plus the queue) gets only 200 and 503 + Retry-After, with every
/health and /metrics probe answered within 1 s, peak RSS at most twice the idle RSS and the burst's
memory returned once the server reports its trim (vlm_memory_trims_total); 100 slow-header connections from one peer leave other peers' probes answered
within 2 s.

Each test starts its own server with small limits, so a few seconds of load on two cores reach
them. The long versions of these probes, with their durations, are in bench/server/overload.py.
"""

import json
import re
import signal
import socket
import threading
import time
import unittest


from server_harness import TMP, RssSampler, Server, SlowHeaders, WrkLoad, image_bytes, probe, run_tests

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


def memory_trims(server):
    """vlm_memory_trims_total: the trims the server did after bursts so far."""
    return int(re.search(r"^vlm_memory_trims_total (\d+)$", server.get("/metrics").text, re.M).group(1))


def settled_kb(server, trims_before, limit_s=10.0):
    """(RSS, anonymous RSS) in KiB once the burst is over: 1.5 s after it, and once the server has
    trimmed since `trims_before` (it trims 0.5 s after the last request begins or ends), so a slow
    machine only waits longer. None when no trim came within limit_s."""
    time.sleep(1.5)
    deadline = time.monotonic() + limit_s
    while memory_trims(server) <= trims_before:
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    return server.rss_kb(), server.rss_kb("RssAnon")


class Overload(unittest.TestCase):
    # Capacity is what the batcher holds: a batch of --batch-max running plus --queue waiting; the
    # HTTP layer admits exactly that many (--max-concurrent-requests), so all of it can be busy.
    QUEUE = 2
    BATCH_MAX = 1
    CAPACITY = QUEUE + BATCH_MAX
    CONNECTIONS = 5 * CAPACITY
    SECONDS = 4.0

    def load(self, queue=QUEUE):
        """wrk's CONNECTIONS on /detect for SECONDS while /health and /metrics are probed every 0.1 s;
        returns wrk's figures and the probes, after checking what every run must hold."""
        # Eight connection workers: three for admitted requests, the rest for probes and refusals.
        server = Server("--queue", str(queue), "--batch-max", str(self.BATCH_MAX), "--max-concurrent-requests",
                        str(self.CAPACITY), "--http-max-threads", "8")
        try:
            # Idle is a server warmed by the same burst, at rest: the first burst's one-time state (a
            # malloc arena, stack and thread-local buffers per worker thread, the decoders' and
            # libtorch's first allocations) is not memory kept by a burst. Measured from a cold start it
            # once came to 36 MB in CI, and after a 1 s warm-up to 52 MB: a shorter burst leaves some
            # workers unwarmed.
            trims = memory_trims(server)
            WrkLoad(server, self.CONNECTIONS, self.SECONDS).result()
            idle = settled_kb(server, trims)
            self.assertIsNotNone(idle, "no memory trim within 10 s of the warm-up burst")
            rss = RssSampler(server, ("VmRSS", "RssAnon"))
            trims = memory_trims(server)
            load = WrkLoad(server, self.CONNECTIONS, self.SECONDS)
            time.sleep(0.5)  # the connections' first requests are in
            probes = probe(server, ["/health", "/metrics"], self.SECONDS - 1.0, limit_s=1.0)
            figures = load.result()
            peaks = rss.stop()
            after = settled_kb(server, trims)
            self.assertIsNotNone(after, "no memory trim within 10 s of the burst")
        finally:
            server.stop()
        (idle_kb, idle_anon_kb), (after_kb, after_anon_kb) = idle, after
        peak_kb, peak_anon_kb = peaks["VmRSS"], peaks["RssAnon"]
        counts = figures["counts"]
        slowest = max(t for _, _, t in probes)
        print(f"wrk, {self.CONNECTIONS} connections x {self.SECONDS:g} s, capacity {self.CAPACITY} (--queue {queue} "
              f"--batch-max {self.BATCH_MAX} --max-concurrent-requests {self.CAPACITY}): {counts}, "
              f"503 without Retry-After {figures['retry_after_missing']}, socket errors {figures['socket_errors']}; "
              f"{len(probes)} probes, slowest {slowest * 1e3:.0f} ms; RSS idle {idle_kb // 1024} MB, "
              f"peak {peak_kb // 1024} MB, after {after_kb // 1024} MB; anonymous idle {idle_anon_kb // 1024} MB, "
              f"peak {peak_anon_kb // 1024} MB, after {after_anon_kb // 1024} MB")
        self.assertEqual({key.split()[0] for key in counts} - {"200", "503"}, set(), counts)
        self.assertEqual(figures["retry_after_missing"], 0, "503 without Retry-After: 1")
        self.assertEqual(sum(figures["socket_errors"].values()), 0, "a request lost without an answer")
        self.assertGreater(counts.get("200", 0), 0)
        self.assertTrue(all(status == 200 for _, status, _ in probes), [p for p in probes if p[1] != 200])
        self.assertLess(slowest, 1.0)
        self.assertLessEqual(peak_kb, 2 * idle_kb, "peak RSS over twice the idle RSS")
        # Returned: at most half of what the burst added (or 32 MB) is still mapped once the server has
        # trimmed after it. Both counted in anonymous memory (heap, stacks): the shared libraries' pages in
        # RSS are page cache, and grow as code runs for the first time and as other processes on the
        # machine read the same libraries (VmRSS idle: about 490 MB on the dev machine, 650 MB in CI
        # with other tests running beside it).
        self.assertLessEqual(after_anon_kb - idle_anon_kb, max(32 << 10, (peak_anon_kb - idle_anon_kb) // 2),
                             "memory kept after the burst")
        return counts

    def test_five_times_capacity_gets_200_or_503_retry_after_and_probes_stay_fast(self):
        counts = self.load()
        self.assertIn("503 overloaded", counts, "the HTTP layer refuses beyond --max-concurrent-requests")

    def test_batcher_queue_smaller_than_admitted_reaches_queue_full(self):
        # One request running and one waiting leave the third admitted one to the batcher's refusal.
        counts = self.load(queue=1)
        self.assertIn("503 overloaded", counts)
        self.assertIn("503 queue_full", counts)


class SlowClients(unittest.TestCase):
    def test_slow_connections_from_one_peer_leave_other_peers_probes_answered(self):
        # Defaults throughout: 64 connection workers, --max-connections-per-peer 32.
        server = Server()
        try:
            slow = SlowHeaders(server.port, "127.0.0.2", 100)
            # A probe starved by the slow peer would wait for its connections' 10 s header deadline; 5 s
            # tells that from a loaded 2-core machine (a CI run timed one probe out at 2 s while a
            # container image built beside it).
            probes = probe(server, ["/health", "/metrics"], 4.0, limit_s=5.0)
            refused = [a for a in slow.answers.values() if a.startswith(b"HTTP/1.1 503")]
            held = 100 - len(slow.ended)
            slow.close()
        finally:
            server.stop()
        slowest = max(t for _, _, t in probes)
        print(f"100 slow connections from one peer: {held} held, {len(refused)} refused 503; {len(probes)} probes, "
              f"slowest {slowest * 1e3:.0f} ms")
        self.assertTrue(all(status == 200 for _, status, _ in probes), [p for p in probes if p[1] != 200])
        self.assertLess(slowest, 5.0)
        self.assertTrue(refused, "connections over the per-peer cap are answered 503")
        head, _, body = refused[0].partition(b"\r\n\r\n")
        self.assertIn(b"Retry-After: 1", head)
        self.assertEqual(json.loads(body)["error"]["code"], "too_many_connections")

    def test_header_deadline_counts_from_accept(self):
        header_s = 2.0
        server = Server("--http-threads", "1", "--http-max-threads", "2", "--max-concurrent-requests", "1",
                        "--header-timeout-s", str(header_s))
        try:
            # Two slow clients (two peers) hold both workers; a third waits for one from its accept.
            holders = [SlowHeaders(server.port, source, 1) for source in ("127.0.0.2", "127.0.0.3")]
            time.sleep(0.2)
            waiting = SlowHeaders(server.port, "127.0.0.4", 1)
            deadline = time.monotonic() + 4 * header_s
            while not waiting.ended and time.monotonic() < deadline:
                time.sleep(0.05)
            sock, connected = waiting.opened[0]
            took = waiting.ended.get(sock, float("inf")) - connected
            for h in holders + [waiting]:
                h.close()
        finally:
            server.stop()
        print(f"a connection that waited for a worker was closed {took:.2f} s after connecting "
              f"(--header-timeout-s {header_s})")
        self.assertLess(took, header_s + 0.8)


if __name__ == "__main__":
    run_tests()
