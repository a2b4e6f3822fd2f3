"""Closed-loop load generator for POST /detect (or another path with its query): N clients, each with one keep-alive connection,
send images back to back for a fixed time. Prints JSON with req/s and latency percentiles, and with --stages
the server's mean time per stage (vlmserve's /metrics) over the same point, beside the client's mean latency."""

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import stage_breakdown


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def client(host, port, images, deadline, latencies, errors, api_key, offset, path):
    conn = http.client.HTTPConnection(host, port, timeout=120)
    headers = {"Content-Type": "image/jpeg"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    i = offset
    while time.perf_counter() < deadline:
        body = images[i % len(images)]
        i += 1
        start = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=120)
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=120)
        if ok:
            latencies.append(time.perf_counter() - start)
        else:
            errors.append(1)
    conn.close()


def run(host, port, images, clients, seconds, api_key=None, path="/detect"):
    latencies, errors = [], []
    deadline = time.perf_counter() + seconds
    threads = [threading.Thread(target=client, args=(host, port, images, deadline, latencies, errors, api_key, k, path))
               for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "seconds": round(elapsed, 2),
            "req_per_s": round(len(latencies) / elapsed, 2),
            "p50_ms": round(percentile(latencies, 0.5) * 1e3, 1), "p99_ms": round(percentile(latencies, 0.99) * 1e3, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1e3, 1) if latencies else None}


def settled_scrape(args):
    # The server records an answer's respond stage just after writing it, so the client can hold the
    # answer a moment before that: a short pause keeps the last answers in their own point.
    time.sleep(0.1)
    return stage_breakdown.scrape(args.host, args.port, args.api_key)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup-seconds", type=float, default=2)
    parser.add_argument("--api-key")
    parser.add_argument("--stages", action="store_true",
                        help="also read vlmserve's per-stage histogram before and after each point")
    args = parser.parse_args()
    images = [Path(p).read_bytes() for p in args.images]
    run(args.host, args.port, images, max(args.clients), args.warmup_seconds, args.api_key)
    for n in args.clients:
        before = settled_scrape(args) if args.stages else None
        row = run(args.host, args.port, images, n, args.seconds, args.api_key)
        if args.stages:
            after = settled_scrape(args)
            stages = stage_breakdown.mean_ms(before, after)
            row["batch_images"] = stage_breakdown.mean_batch(before, after)
            row["stages_ms"] = stages
            row["stages_sum_ms"] = round(sum(v for v in stages.values() if v is not None), 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    sys.exit(main())
