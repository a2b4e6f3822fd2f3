"""The server's own account of where a request's time goes: vlmserve's vlm_request_stage_seconds
histogram, read from GET /metrics before and after a load point. The mean of a stage over the point
is the growth of its sum over the growth of its count. Run on load.py --stages output, prints the table."""

import http.client
import json
import re
import sys

STAGES = ("receive", "decode", "queue", "preprocess", "forward", "postprocess", "respond")
_LINE = re.compile(r'^vlm_request_stage_seconds_(sum|count)\{model="(?:[^"\\]|\\.)*",stage="([a-z]+)"\} (\S+)$', re.M)
_BATCH = re.compile(r'^vlm_batch_size_(sum|count)\{model="(?:[^"\\]|\\.)*"\} (\S+)$', re.M)


def scrape(host, port, api_key=None):
    """{stage: [sum seconds, count]} over every model the server holds, and "batch": [images, batches]."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET /metrics answered {response.status}: {text[:200]}")
    totals = {stage: [0.0, 0] for stage in (*STAGES, "batch")}
    for kind, stage, value in _LINE.findall(text):
        if stage in totals:
            totals[stage][0 if kind == "sum" else 1] += float(value)
    for kind, value in _BATCH.findall(text):
        totals["batch"][0 if kind == "sum" else 1] += float(value)
    return totals


def growth(before, after, key):
    """The mean of what was observed under `key` between two scrapes (None where nothing was)."""
    count = after[key][1] - before[key][1]
    return (after[key][0] - before[key][0]) / count if count else None


def mean_ms(before, after):
    """{stage: mean ms per request between two scrapes} (None where no request finished in between)."""
    return {stage: None if (m := growth(before, after, stage)) is None else round(m * 1e3, 2) for stage in STAGES}


def mean_batch(before, after):
    """Images per forward pass between two scrapes."""
    mean = growth(before, after, "batch")
    return None if mean is None else round(mean, 2)


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
    print("server-side stages, mean ms per request (vlm_request_stage_seconds; preprocess, forward and "
          "postprocess are the whole batch's; batch: mean images per forward pass)")
    print(f"{'clients':>7} {'batch':>5} | " + " ".join(f"{s:>11}" for s in STAGES) + f" | {'sum':>7} {'client mean':>11}")
    cell = lambda v: f"{v:>11.2f}" if v is not None else f"{'-':>11}"  # noqa: E731
    for r in rows:
        batch = f"{r['batch_images']:>5.2f}" if r.get("batch_images") is not None else f"{'-':>5}"
        print(f"{r['clients']:>7} {batch} | " + " ".join(cell(r["stages_ms"][s]) for s in STAGES) +
              f" | {r['stages_sum_ms']:>7.2f} {cell(r['mean_ms'])}")


if __name__ == "__main__":
    main()
