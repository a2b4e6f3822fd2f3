"""The server's own account of where a request's time goes: vlmserve's vlm_request_stage_seconds
histogram, read from GET /metrics before and after a load point. The mean of a stage over the point
is the growth of its sum over the growth of its count. Run on load.py --stages output, prints the table."""

import http.client
import json
import re
import sys

STAGES = ("receive", "decode", "queue", "preprocess", "forward", "postprocess", "respond")
_LINE = re.compile(r'^vlm_request_stage_seconds_(sum|count)\{model="(?:[^"\\]|\\.)*",stage="([a-z]+)"\} (\S+)$', re.M)


def scrape(host, port, api_key=None):
    """{stage: [sum seconds, count]} over every model the server holds."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET /metrics answered {response.status}: {text[:200]}")
    totals = {stage: [0.0, 0] for stage in STAGES}
    for kind, stage, value in _LINE.findall(text):
        if stage in totals:
            totals[stage][0 if kind == "sum" else 1] += float(value) if kind == "sum" else int(value)
    return totals


def mean_ms(before, after):
    """{stage: mean ms per request between two scrapes} (None where no request finished in between)."""
    out = {}
    for stage in STAGES:
        count = after[stage][1] - before[stage][1]
        out[stage] = round((after[stage][0] - before[stage][0]) / count * 1e3, 2) if count else None
    return out


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
    print("server-side stages, mean ms per request (vlm_request_stage_seconds; preprocess, forward and "
          "postprocess are the whole batch's)")
    print(f"{'clients':>7} | " + " ".join(f"{s:>11}" for s in STAGES) + f" | {'sum':>7} {'client mean':>11}")
    cell = lambda v: f"{v:>11.2f}" if v is not None else f"{'-':>11}"  # noqa: E731
    for r in rows:
        print(f"{r['clients']:>7} | " + " ".join(cell(r["stages_ms"][s]) for s in STAGES) +
              f" | {r['stages_sum_ms']:>7.2f} {cell(r['mean_ms'])}")


if __name__ == "__main__":
    main()
