"""The connection guarantees of plain HTTP, over TLS (--ssl-cert-file / --ssl-key-file), against a real
`vlmserve serve` with Python's ssl and http.client as the clients: the header deadline counts from
accept and covers the handshake, the per-peer connection cap applies before the handshake,
slowloris clients on the handshake or on the headers leave other peers' probes answered within
2 s, pipelined requests are answered in order, and the connection closes after a 400.
"""

import json
import ssl
import time
import unittest

from server_harness import (Server, SlowHeaders, connect, probe, raw_request, responses, run_tests, tls_certificate,
                            tls_client)

HEADER_S = 2.0
PEER_CAP = 4
SERVER = None
CLIENT = None


def start(*args):
    cert, key = tls_certificate()
    return Server("--ssl-cert-file", str(cert), "--ssl-key-file", str(key), "--warmup", "0", *args, scheme="https")


def setUpModule():
    global SERVER, CLIENT
    CLIENT = tls_client(tls_certificate()[0])
    SERVER = start("--header-timeout-s", str(HEADER_S), "--max-connections-per-peer", str(PEER_CAP))


def tearDownModule():
    if SERVER:
        SERVER.stop()


def client_hello():
    """The first flight of a real TLS client (Python's ssl), to send one byte at a time."""
    context = ssl.create_default_context()
    outgoing = ssl.MemoryBIO()
    session = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="127.0.0.1")
    try:
        session.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def ended_after(slow, limit_s):
    """Seconds from connect to the server closing the one connection of `slow` (inf: not within limit_s)."""
    deadline = time.monotonic() + limit_s
    while not slow.ended and time.monotonic() < deadline:
        time.sleep(0.05)
    sock, connected = slow.opened[0]
    return slow.ended.get(sock, float("inf")) - connected


class HeaderDeadline(unittest.TestCase):
    def test_handshake_sent_byte_by_byte_is_cut_at_the_header_deadline(self):
        slow = SlowHeaders(SERVER.port, "127.0.0.2", 1, payload=client_hello())
        try:
            took = ended_after(slow, 4 * HEADER_S)
        finally:
            slow.close()
        print(f"a handshake dribbled one byte every 0.5 s was closed after {took:.2f} s "
              f"(--header-timeout-s {HEADER_S})")
        self.assertLess(took, HEADER_S + 0.8)

    def test_headers_sent_byte_by_byte_after_the_handshake_are_cut_at_the_header_deadline(self):
        slow = SlowHeaders(SERVER.port, "127.0.0.3", 1, tls=CLIENT)
        try:
            took = ended_after(slow, 4 * HEADER_S)
        finally:
            slow.close()
        print(f"headers dribbled over TLS were closed after {took:.2f} s (--header-timeout-s {HEADER_S})")
        self.assertLess(took, HEADER_S + 0.8)


class PeerCap(unittest.TestCase):
    def test_connections_over_the_per_peer_cap_are_closed_before_the_handshake(self):
        held = [connect(SERVER.port, "127.0.0.4", tls=CLIENT) for _ in range(PEER_CAP)]
        try:
            with self.assertRaises(OSError):  # ssl.SSLError or a reset: no handshake, no answer
                with connect(SERVER.port, "127.0.0.4", tls=CLIENT) as extra:
                    extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    if not extra.recv(4096):
                        raise ConnectionAbortedError("closed unanswered")
            # Another peer is not affected.
            answer = responses(raw_request(SERVER.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                           tls=CLIENT))
            self.assertEqual([a[0] for a in answer], [200])
        finally:
            for sock in held:
                sock.close()


class Framing(unittest.TestCase):
    def test_pipelined_requests_are_all_answered_in_order(self):
        ids = ["tls-pipe-1", "tls-pipe-2", "tls-pipe-3"]
        data = b"".join(f"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: {i}\r\n\r\n".encode() for i in ids)
        data += b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        start_s = time.monotonic()
        answers = responses(raw_request(SERVER.port, data, tls=CLIENT))
        self.assertLess(time.monotonic() - start_s, 3)
        self.assertEqual([a[0] for a in answers], [200, 200, 200, 200])
        self.assertEqual([a[1]["x-request-id"] for a in answers[:3]], ids)
        self.assertEqual(json.loads(answers[3][2])["status"], "ready")

    def test_connection_closes_after_a_header_limit_400(self):
        smuggled = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Request-Id: smuggled\r\n\r\n"
        data = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20000 + b"\r\n" + smuggled
        start_s = time.monotonic()
        raw = raw_request(SERVER.port, data, tls=CLIENT)
        self.assertLess(time.monotonic() - start_s, 3, "the server kept the connection open")
        answers = responses(raw)
        self.assertEqual([a[0] for a in answers], [400], raw[:500])
        self.assertEqual(answers[0][1]["connection"], "close")
        self.assertNotIn(b"smuggled", raw)


class Slowloris(unittest.TestCase):
    def test_slow_handshakes_and_slow_headers_leave_other_peers_probes_answered(self):
        # Defaults throughout: 64 connection workers, --max-connections-per-peer 32, --header-timeout-s 10.
        server = start()
        try:
            headers = SlowHeaders(server.port, "127.0.0.3", 30, tls=CLIENT)
            handshakes = SlowHeaders(server.port, "127.0.0.2", 100, payload=client_hello())
            probes = probe(server, ["/health", "/metrics"], 4.0, limit_s=2.0, tls=CLIENT)
            closed_at_once = len(handshakes.ended)
            held = 130 - closed_at_once - len(headers.ended)
            handshakes.close()
            headers.close()
        finally:
            server.stop()
        slowest = max(t for _, _, t in probes)
        print(f"100 slow handshakes and 30 slow header blocks over TLS: {held} held, {closed_at_once} closed "
              f"unanswered; {len(probes)} probes over TLS, slowest {slowest * 1e3:.0f} ms")
        self.assertTrue(all(status == 200 for _, status, _ in probes), [p for p in probes if p[1] != 200])
        self.assertLess(slowest, 2.0)
        self.assertGreaterEqual(closed_at_once, 100 - 32, "the per-peer cap closes the rest before their handshake")


if __name__ == "__main__":
    run_tests()
