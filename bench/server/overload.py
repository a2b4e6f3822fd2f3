"""The long versions of the overload probes in tests/integration/test_server_overload.py, at the
server's default limits (--max-concurrent-requests 32, --http-max-threads 64,
--max-connections-per-peer 32, --drain-timeout-s 5 here):

  overload   5x capacity: 160 clients on /detect from 127.0.0.1 (32 processes x 5 threads,
             keep-alive, 0.1 s back-off after a 503) for --seconds (default 60) while /health and
             /metrics are probed every 0.1 s from 127.0.0.3 (a kubelet is another peer); status
             counts, probe latency p50/p99/max, RSS idle/peak/30 s after.
  slowloris  250 connections from 127.0.0.2 sending headers one byte every 0.5 s for --seconds,
             probes from 127.0.0.1 every 0.1 s; the share answered within 2 s.
  drain      a slow upload open, SIGTERM with --drain-timeout-s 5; seconds to exit and the status.

    VLM_BIN=build/auto/cli/vlmserve VLM_TEST_DATA=build/auto/test-data \\
        .venv/bin/python bench/server/overload.py [overload slowloris drain] [--seconds 60]
"""

import argparse
import multiprocessing
import signal
import statistics
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))

from server_harness import Server  # noqa: E402
from test_server_overload import SlowHeaders, SlowUpload, hammer, probe  # noqa: E402


def hammer_threads(port, seconds, threads):
    with futures.ThreadPoolExecutor(threads) as pool:
        return [r for client in pool.map(lambda _: hammer(port, seconds), range(threads)) for r in client]


def latency_line(probes, limit_s):
    times = sorted(t for _, _, t in probes)
    ok = sum(1 for _, status, t in probes if status == 200 and t < limit_s)
    return (f"{len(probes)} probes, {100.0 * ok / len(probes):.1f}% answered 200 within {limit_s:g} s; "
            f"p50 {statistics.median(times) * 1e3:.0f} ms, p99 {times[int(0.99 * (len(times) - 1))] * 1e3:.0f} ms, "
            f"max {times[-1] * 1e3:.0f} ms")


def overload(seconds):
    server = Server()
    try:
        idle_kb = peak_kb = server.rss_kb()
        with multiprocessing.get_context("fork").Pool(32) as pool:
            load = pool.starmap_async(hammer_threads, [(server.port, seconds, 5)] * 32)
            time.sleep(2.0)
            result = {}
            prober = threading.Thread(
                target=lambda: result.update(p=probe(server, ["/health", "/metrics"], seconds - 3.0, 1.0, "127.0.0.3")))
            prober.start()
            while not load.ready():
                peak_kb = max(peak_kb, server.rss_kb())
                time.sleep(0.1)
            prober.join()
            results = [r for client in load.get() for r in client]
        time.sleep(30)
        after_kb = server.rss_kb()
    finally:
        server.stop()
    counts = {}
    for status, _, code in results:
        counts[(status, code)] = counts.get((status, code), 0) + 1
    print(f"overload, 160 clients x {seconds:g} s: {counts}")
    print(f"  {latency_line(result['p'], 1.0)}")
    print(f"  RSS idle {idle_kb // 1024} MB, peak {peak_kb // 1024} MB, 30 s after {after_kb // 1024} MB")


def slowloris(seconds):
    server = Server()
    try:
        slow = SlowHeaders(server.port, "127.0.0.2", 250)
        probes = probe(server, ["/health", "/metrics"], seconds, 2.0)
        held = 250 - len(slow.ended)
        slow.close()
    finally:
        server.stop()
    print(f"slowloris, 250 connections from one peer x {seconds:g} s ({held} held at the end):")
    print(f"  {latency_line(probes, 2.0)}")


def drain(_seconds):
    server = Server("--drain-timeout-s", "5")
    try:
        slow = SlowUpload(server.port)
        time.sleep(0.5)
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        status = server.proc.wait(120)
        took = time.monotonic() - start
        slow.close()
    finally:
        server.stop()
    print(f"drain, a slow upload open, --drain-timeout-s 5: exit {status} after {took:.2f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probes", nargs="*", default=["overload", "slowloris", "drain"],
                        choices=["overload", "slowloris", "drain"])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    for name in args.probes:
        globals()[name](args.seconds)


if __name__ == "__main__":
    main()
