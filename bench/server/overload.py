"""The long versions of the overload probes in tests/integration/test_server_overload.py, at the
server's default limits (--max-concurrent-requests 32, --queue 16, --batch-max 8, --http-max-threads
64, --max-connections-per-peer 32, --drain-timeout-s 5 here):

  overload   5x capacity with Debian's wrk: capacity is what the batcher holds, a batch of 8
             running plus 16 queued = 24 (the HTTP layer admits 32; the batcher refuses the rest
             with queue_full), so 120 keep-alive connections post a JPEG to /detect (0.1 s back-off
             after a 503, tests/integration/wrk_detect.lua) for --seconds (default 60), with
             --max-connections-per-peer 0 as wrk is one peer, while /health and /metrics are
             probed every 0.1 s from 127.0.0.3 (a kubelet is another peer); status counts, socket
             errors, probe latency p50/p99/max, RSS idle/peak (every 50 ms)/30 s after, and each
             target of issue 12 met or not.
  slowloris  250 connections from 127.0.0.2 sending headers one byte every 0.5 s for --seconds,
             probes from 127.0.0.1 every 0.1 s; the share answered within 2 s.
  drain      a slow upload open, SIGTERM with --drain-timeout-s 5; seconds to exit and the status.

    VLM_BIN=build/auto/cli/vlmserve VLM_TEST_DATA=build/auto/test-data \\
        .venv/bin/python bench/server/overload.py [overload slowloris drain] [--seconds 60]
"""

import argparse
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))

from server_harness import RssSampler, Server, SlowHeaders, WrkLoad, probe  # noqa: E402
from test_server_overload import SlowUpload  # noqa: E402

CAPACITY = 8 + 16  # --batch-max + --queue at their defaults


def latency_line(probes, limit_s):
    times = sorted(t for _, _, t in probes)
    ok = sum(1 for _, status, t in probes if status == 200 and t < limit_s)
    return (f"{len(probes)} probes, {100.0 * ok / len(probes):.1f}% answered 200 within {limit_s:g} s; "
            f"p50 {statistics.median(times) * 1e3:.0f} ms, p99 {times[int(0.99 * (len(times) - 1))] * 1e3:.0f} ms, "
            f"max {times[-1] * 1e3:.0f} ms")


def overload(seconds):
    server = Server("--max-connections-per-peer", "0")
    try:
        idle_kb = server.rss_kb()
        rss = RssSampler(server)
        load = WrkLoad(server, 5 * CAPACITY, seconds)
        time.sleep(2.0)
        probes = probe(server, ["/health", "/metrics"], seconds - 3.0, 1.0, "127.0.0.3")
        figures = load.result()
        peak_kb = rss.stop()["VmRSS"]
        time.sleep(30)
        after_kb = server.rss_kb()
    finally:
        server.stop()
    counts = figures["counts"]
    within = all(status == 200 and t < 1.0 for _, status, t in probes)
    print(f"overload, wrk, {5 * CAPACITY} connections (5x capacity {CAPACITY}) x {seconds:g} s: {counts}; "
          f"503 without Retry-After {figures['retry_after_missing']}; socket errors {figures['socket_errors']}; "
          f"latency p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms")
    print(f"  {latency_line(probes, 1.0)}")
    print(f"  RSS idle {idle_kb // 1024} MB, peak {peak_kb // 1024} MB, 30 s after {after_kb // 1024} MB")
    print(f"  targets: only 200 and 503 + Retry-After "
          f"{'met' if set(k.split()[0] for k in counts) <= {'200', '503'} and not figures['retry_after_missing'] else 'MISSED'}; "
          f"probes 100% within 1 s {'met' if within else 'MISSED'}; "
          f"peak <= 2x idle {'met' if peak_kb <= 2 * idle_kb else 'MISSED'}")


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
