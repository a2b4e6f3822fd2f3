"""Florence-2 behind HTTP: `vlmserve serve` answering POST /detect with a task at 1 and 16 concurrent
clients, beside transformers called in a loop, one photo per call, the way Florence-2 is served
today (model card: processor -> generate -> batch_decode -> post_process_generation). Same
checkpoint, photos, task, dtype and generation settings on both sides; both sides' timings include
decoding the JPEG, preprocessing and post-processing, and vlmserve's include HTTP on loopback.

  python bench/florence2/server.py --bin build/auto/cli/vlmserve --model DIR --device cuda --half \
      [--task "<CAPTION>"] [--num-beams 3] [--max-new-tokens 64] [--clients 1,16] [--seconds 15]
  python bench/florence2/server.py --bin ... --model DIR --smoke    (CPU, a few seconds; the ctest)

Prints one table: requests/s, p50 and p99 latency and generated tokens per request for each side,
and the ratios (vlmserve req/s / transformers req/s; transformers p50 / vlmserve p50). Greedy or
beam search runs to the checkpoint's EOS on both sides, so the token columns say whether both
generated the same length (random-weight checkpoints may not). Exit status 1 when a request failed.
"""
import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "bench", "server"))
sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))

import load  # noqa: E402  (bench/server/load.py: the closed-loop load generator)

PHOTOS = ["dog.jpg", "bus.jpg", "zidane.jpg", "horses.jpg", "giraffe.jpg", "person.jpg"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the vlmserve binary")
    p.add_argument("--bin-env", default="", help="LD_LIBRARY_PATH for the binary only (GPU bundle)")
    p.add_argument("--model", required=True, help="a Hugging Face Florence-2 folder (native layout)")
    p.add_argument("--images", default=os.environ.get("VLM_ASSETS", os.path.join(ROOT, "..", "shared", "assets"))
                   + "/images", help="folder with the photos")
    p.add_argument("--device", default="cuda")
    p.add_argument("--half", action="store_true", help="fp16 on both sides (CUDA)")
    p.add_argument("--task", default="<CAPTION>")
    p.add_argument("--num-beams", type=int, default=3, help="the model card's setting")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--clients", default="1,16")
    p.add_argument("--batch-max", type=int, default=16)
    p.add_argument("--seconds", type=float, default=15, help="per measured point, after --warmup-seconds")
    p.add_argument("--warmup-seconds", type=float, default=3)
    p.add_argument("--jsonl", help="also write each point's JSON line here")
    p.add_argument("--photos", type=int, default=len(PHOTOS), help="how many of the photos to cycle through")
    p.add_argument("--smoke", action="store_true", help="CPU, fp32, 2 photos, 1 and 2 clients, 1 s per point")
    args = p.parse_args()
    if args.smoke:
        args.device, args.half, args.clients, args.batch_max = "cpu", False, "1,2", 2
        args.seconds, args.warmup_seconds, args.max_new_tokens, args.photos = 1, 0, 16, 2
    return args


def tokens_of(ids, eos_id):
    """Generated tokens after the decoder start token, up to and including the first EOS (the rule of
    the in-process benchmark, bench/florence2/transformers_reference.py)."""
    for i in range(1, len(ids)):
        if ids[i] == eos_id:
            return i
    return len(ids) - 1


def start_server(args, log):
    env = dict(os.environ)
    if args.bin_env:
        env["LD_LIBRARY_PATH"] = args.bin_env
    cmd = [args.bin, "serve", "--model", f"florence2={args.model}", "--device", args.device, "--port", "0",
           "--batch-max", str(args.batch_max), "--queue", "256", "--max-new-tokens-limit",
           str(max(args.max_new_tokens, 1))]
    if args.half:
        cmd.append("--half")
    proc = subprocess.Popen(cmd, stderr=log, stdout=subprocess.DEVNULL, env=env)
    deadline = time.time() + 600  # loading and warming up every batch size
    port = None
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vlmserve exited {proc.returncode}: {open(log.name).read()[-2000:]}")
        if port is None:
            for line in open(log.name):
                if "listening on http://" in line:
                    port = int(line.split("listening on http://", 1)[1].split()[0].rsplit(":", 1)[1].rstrip("/"))
        if port is not None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                    if r.status == 200:
                        return proc, port
            except OSError:
                pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("vlmserve did not become ready in 600 s")


def serve_side(args, photos, eos_id):
    query = urllib.parse.urlencode({"task": args.task, "num_beams": args.num_beams,
                                    "max_new_tokens": args.max_new_tokens})
    path = f"/detect?{query}"
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
        proc, port = start_server(args, log)
        try:
            # Tokens per request, from one answer per photo (the same photos the load cycles through).
            tokens = []
            for body in photos:
                request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                                 headers={"Content-Type": "image/jpeg"})
                with urllib.request.urlopen(request, timeout=600) as r:
                    tokens.append(tokens_of(json.loads(r.read())["generated_ids"], eos_id))
            clients = [int(c) for c in args.clients.split(",")]
            if args.warmup_seconds > 0:
                load.run("127.0.0.1", port, photos, max(clients), args.warmup_seconds, path=path)
            points = []
            for n in clients:
                point = load.run("127.0.0.1", port, photos, n, args.seconds, path=path)
                point["tokens"] = sum(tokens) / len(tokens)
                points.append(point)
            return points
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def transformers_side(args, photos):
    import statistics

    import torch
    from PIL import Image
    from florence2_task_refs import processor_for
    from transformers import Florence2ForConditionalGeneration

    # vlmserve runs fp32 without TF32 (src/runtime.cpp); so does the reference.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtype = torch.float16 if args.half else torch.float32
    processor = processor_for(args.model)
    model = Florence2ForConditionalGeneration.from_pretrained(args.model, attn_implementation="sdpa",
                                                              dtype=dtype).to(args.device).eval()
    eos_id = model.generation_config.eos_token_id

    def call(body):
        image = Image.open(io.BytesIO(body)).convert("RGB")
        inputs = processor(text=args.task, images=image, return_tensors="pt").to(args.device)
        ids = model.generate(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"].to(dtype),
                             num_beams=args.num_beams, max_new_tokens=args.max_new_tokens, do_sample=False)
        text = processor.batch_decode(ids, skip_special_tokens=False)[0]
        processor.post_process_generation(text, task=args.task, image_size=image.size)
        return ids[0].tolist()  # .tolist() waits for the device, as the answer would

    latencies, tokens = [], [tokens_of(call(body), eos_id) for body in photos]
    end = time.perf_counter() + args.warmup_seconds
    i = 0
    while time.perf_counter() < end:
        call(photos[i % len(photos)])
        i += 1
    start = time.perf_counter()
    end = start + args.seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        call(photos[i % len(photos)])
        latencies.append(time.perf_counter() - t)
        i += 1
    elapsed = time.perf_counter() - start
    return {"clients": 1, "requests": len(latencies), "errors": 0, "seconds": round(elapsed, 2),
            "req_per_s": round(len(latencies) / elapsed, 2),
            "p50_ms": round(load.percentile(latencies, 0.5) * 1e3, 1),
            "p99_ms": round(load.percentile(latencies, 0.99) * 1e3, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1e3, 1), "tokens": sum(tokens) / len(tokens)}, eos_id


def main():
    args = parse_args()
    paths = [os.path.join(args.images, p) for p in PHOTOS if os.path.exists(os.path.join(args.images, p))]
    paths = paths[:args.photos]
    if not paths:
        sys.exit(f"server.py: no photos in {args.images}")
    photos = [open(p, "rb").read() for p in paths]
    import torch
    import transformers

    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    dtype = "fp16" if args.half else "fp32"
    # The reference first: its model leaves the device before vlmserve loads.
    with torch.no_grad():
        reference, eos_id = transformers_side(args, photos)
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    points = serve_side(args, photos, eos_id)
    print(f"\n== Florence-2 server: vlmserve POST /detect vs transformers {transformers.__version__} (sdpa) in a loop, "
          f"torch {torch.__version__}, {device_name}, {dtype}; task {args.task}, {args.num_beams} beams, at most "
          f"{args.max_new_tokens} new tokens; {len(photos)} photos in turn; {args.seconds:g} s per point after "
          f"{args.warmup_seconds:g} s warm-up; vlmserve --batch-max {args.batch_max}")
    cols = f"{'side':<28} {'clients':>7} {'req/s':>8} {'p50 ms':>9} {'p99 ms':>9} {'tokens':>7} {'x req/s':>8} {'x p50':>7}"
    print(cols)
    print("-" * len(cols))
    print(f"{'transformers loop':<28} {1:>7} {reference['req_per_s']:8.2f} {reference['p50_ms']:9.1f} "
          f"{reference['p99_ms']:9.1f} {reference['tokens']:7.1f} {'1.00':>8} {'1.00':>7}")
    failed = False
    for point in points:
        failed = failed or point["errors"] > 0 or point["requests"] == 0
        speed = point["req_per_s"] / reference["req_per_s"] if reference["req_per_s"] else float("nan")
        latency = reference["p50_ms"] / point["p50_ms"] if point["requests"] else float("nan")
        print(f"{'vlmserve /detect':<28} {point['clients']:>7} {point['req_per_s']:8.2f} {point['p50_ms']:9.1f} "
              f"{point['p99_ms']:9.1f} {point['tokens']:7.1f} {speed:8.2f} {latency:7.2f}"
              + (f"  ({point['errors']} failed)" if point["errors"] else ""))
    print("x req/s = vlmserve req/s / transformers req/s; x p50 = transformers p50 / vlmserve p50; tokens = "
          "generated per request (mean over the photos). 1 client is like for like (one photo per generate on "
          "both sides); with more clients vlmserve batches concurrent requests (up to --batch-max) while "
          "transformers serves one at a time, as it is deployed")
    if args.jsonl:
        with open(args.jsonl, "w") as f:
            for point in [dict(reference, side="transformers")] + [dict(p, side="vlmserve") for p in points]:
                f.write(json.dumps(point) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
