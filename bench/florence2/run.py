"""Florence-2 benchmark: vlmserve (bench_florence2, in-process timing) against transformers
(transformers_reference.py, sdpa) on the same random-weight checkpoint, photos, batch, dtype and
generation settings; prints one table.

  python bench/florence2/run.py --bench build/auto/bench/florence2/bench_florence2 --device cuda \
      [--shapes base,large] [--dtypes fp16,bf16,fp32] [--batches 1,8,32] \
      [--settings greedy:256,beams3:64,beams3:1024] [--budget-s 540] [--jsonl rows.jsonl]
  python bench/florence2/run.py --bench ... --smoke     (CPU, tiny checkpoint; the ctest)

Rows run most important first (base shape, fp16, batch 1 and 8, greedy-256 and <OD> 3 beams/64,
with the vision encoder and one decoder step alone), then the rest while --budget-s lasts; rows
left out are listed. Greedy rows ban EOS until max_new_tokens on both sides (min_new_tokens), so
both generate the full length. Checkpoints are built in --work with the parity fixtures' recipe
(tests/parity/florence2_make_fixtures.py); the large shape is Florence-2-large's.
With --check-fp32 (implied by --smoke) the exit status is 1 unless every fp32 row's ids are
identical to transformers', or first differ where the reference's own margin is below --tie.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))

LARGE = dict(
    vision=dict(depths=[1, 1, 9, 1], embed_dim=[256, 512, 1024, 2048], num_heads=[8, 16, 32, 64],
                num_groups=[8, 16, 32, 64], projection_dim=1024),
    text=dict(d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
              decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096),
)
PHOTOS = ["dog.jpg", "bus.jpg", "zidane.jpg", "horses.jpg", "giraffe.jpg", "person.jpg"]


class OutOfTime(Exception):
    pass


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", required=True, help="the bench_florence2 binary")
    p.add_argument("--bench-env", default="", help="LD_LIBRARY_PATH for the binary only (GPU bundle)")
    p.add_argument("--images", default=os.environ.get("VLM_ASSETS", os.path.join(ROOT, "..", "shared", "assets"))
                   + "/images", help="folder with the photos")
    p.add_argument("--work", default="/tmp/florence2_bench")
    p.add_argument("--device", default="cuda")
    p.add_argument("--shapes", default="base,large")
    p.add_argument("--dtypes", default="fp16,bf16,fp32")
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--settings", default="greedy:256,beams3:64,beams3:1024",
                   help="greedy:N (EOS suppressed) or beamsK:N (<OD>, K beams, at most N new tokens)")
    p.add_argument("--parts", default="generate,vision,decoder-step")
    p.add_argument("--alone-batches", default="1,8,32", help="batches of the vision and decoder-step rows")
    p.add_argument("--cache-length", type=int, default=128, help="decoder-step rows: positions already cached")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget-s", type=float, default=540, help="start no row after this; a row running then is cut")
    p.add_argument("--jsonl", help="also write every side's JSON line here")
    p.add_argument("--check-fp32", action="store_true")
    p.add_argument("--tie", type=float, default=1e-4, help="margin below which an fp32 difference is a near-tie")
    p.add_argument("--smoke", action="store_true", help="CPU, tiny shape, fp32, batch 1 and 2, 6 tokens")
    args = p.parse_args()
    if args.smoke:
        args.device, args.shapes, args.dtypes, args.batches = "cpu", "tiny", "fp32", "1,2"
        args.settings, args.warmup, args.repeats, args.cache_length = "greedy:6,beams3:6", 0, 1, 16
        args.alone_batches, args.check_fp32 = "1", True
    return args


def setting(spec):
    kind, tokens = spec.split(":")
    beams = 1 if kind == "greedy" else int(kind[len("beams"):])
    return dict(name=f"greedy-{tokens}" if beams == 1 else f"<OD>-{beams}beams-{tokens}", num_beams=beams,
                max_new_tokens=int(tokens), suppress_eos=beams == 1)


def plan(args):
    """(priority, row) for every row asked for, most important first."""
    shapes, dtypes = args.shapes.split(","), args.dtypes.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    settings = [setting(s) for s in args.settings.split(",")]
    parts = args.parts.split(",")
    rows = []
    for si, shape in enumerate(shapes):
        for di, dtype in enumerate(dtypes):
            for batch in batches:
                head = si == 0 and di == 0 and batch <= 8  # the first shape and dtype asked for
                alone = [p for p in parts if p != "generate"] if str(batch) in args.alone_batches.split(",") else []
                for part in alone:
                    rows.append(((not head, si, di, batch, 0), dict(shape=shape, dtype=dtype, batch=batch, part=part,
                                                                   name=part, num_beams=1, max_new_tokens=1)))
                if "generate" not in parts:
                    continue
                for ti, s in enumerate(settings):
                    important = head and s["max_new_tokens"] <= 256
                    rows.append(((not important, si, di, s["max_new_tokens"] > 256, batch, 1 + ti),
                                 dict(shape=shape, dtype=dtype, batch=batch, part="generate", **s)))
    return [r for _, r in sorted(rows, key=lambda x: x[0])]


def checkpoint(shape, work, built):
    if shape in built:
        return built[shape]
    import florence2_make_fixtures as fx
    dims = {"tiny": fx.TINY, "base": fx.BASE, "large": LARGE}[shape]
    start = time.time()
    model = fx.build_model(dims, seed=4321)
    native, original = fx.save_both_layouts(model, dims, work, shape)
    shutil.rmtree(original)  # the benchmark reads the native layout only
    del model
    print(f"# {shape}-shaped checkpoint in {native} ({time.time() - start:.0f} s)", file=sys.stderr, flush=True)
    built[shape] = native
    return native


def row_options(row, model, photos, args):
    task = "<OD>"
    opts = ["--model", model, "--images", ",".join(photos), "--device", args.device, "--dtype", row["dtype"],
            "--batch", str(row["batch"]), "--mode", row["part"], "--task", task,
            "--num-beams", str(row["num_beams"]), "--max-new-tokens", str(row["max_new_tokens"]),
            "--warmup", str(args.warmup), "--repeats", str(args.repeats), "--cache-length", str(args.cache_length)]
    if row.get("suppress_eos"):
        opts.append("--suppress-eos")
    return opts


def run_row(row, model, photos, args, seconds_left):
    import transformers_reference
    opts = row_options(row, model, photos, args)
    env = dict(os.environ)
    if args.bench_env:
        env["LD_LIBRARY_PATH"] = args.bench_env
    proc = subprocess.run([args.bench] + opts, capture_output=True, text=True, env=env, timeout=seconds_left)
    if proc.returncode != 0:
        raise RuntimeError(f"bench_florence2 exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    ours = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    ours_path = os.path.join(args.work, "ours.json")
    with open(ours_path, "w") as f:
        json.dump(ours, f)
    ref_args = transformers_reference.parse_args(opts + ["--ours", ours_path])
    signal.alarm(max(1, int(seconds_left - (time.time() - run_row.start))))
    try:
        ref = transformers_reference.run_row(ref_args)
    finally:
        signal.alarm(0)
    return ours, ref


def fmt(value, spec):
    width = int(spec.split(".")[0].rstrip("dfg") or 0)
    return f"{'-':>{width}}" if value is None else format(value, spec)


def summary(row, ours, ref):
    cells = dict(ours_ms=ours["ms"], ref_ms=ref["ms"], ratio=ref["ms"] / ours["ms"],
                 graph={True: "yes", False: "no"}.get(ours.get("graph"), "-"))
    if row["part"] == "generate":
        cells.update(ours_tps=ours["tokens_per_s"], ref_tps=ref["tokens_per_s"],
                     tokens=f"{ours['tokens']}/{ref['tokens']}")
        diffs = [(d, m) for d, m in zip(ref["first_diff"], ref["margin"]) if d is not None]
        cells["same"] = "yes" if not diffs else f"no {len(diffs)}/{row['batch']}"
        if diffs:
            d, m = min(diffs, key=lambda x: x[0])
            cells["first"], cells["margin"] = d, m
    return cells


def print_table(results, skipped, header):
    print("\n" + header)
    cols = (f"{'shape':<6} {'dtype':<5} {'B':>3} {'row':<22} {'vlmserve ms':>11} {'transf. ms':>10} {'ratio':>6} "
            f"{'vlm tok/s':>9} {'hf tok/s':>9} {'tokens':>11} {'ids same':>9} {'1st diff':>8} {'ref margin':>10} {'graph':>5}")
    print(cols)
    print("-" * len(cols))
    for row, cells in results:
        if "error" in cells:
            print(f"{row['shape']:<6} {row['dtype']:<5} {row['batch']:>3} {row['name']:<22} {cells['error']}")
            continue
        print(f"{row['shape']:<6} {row['dtype']:<5} {row['batch']:>3} {row['name']:<22} {cells['ours_ms']:11.2f} "
              f"{cells['ref_ms']:10.2f} {cells['ratio']:6.2f} {fmt(cells.get('ours_tps'), '9.1f')} "
              f"{fmt(cells.get('ref_tps'), '9.1f')} {cells.get('tokens', '-'):>11} {cells.get('same', '-'):>9} "
              f"{fmt(cells.get('first'), '8d')} {fmt(cells.get('margin'), '10.3g')} {cells['graph']:>5}")
    if skipped:
        print(f"not run (time budget): " + "; ".join(f"{r['shape']} {r['dtype']} B{r['batch']} {r['name']}"
                                                   for r in skipped))
    print("ratio = transformers ms / vlmserve ms (same batch, dtype, photos, settings); ids same: every row of the "
          "batch identical; 1st diff: first generated index that differs (earliest row); ref margin: transformers' "
          "own margin there (greedy top-1/top-2 logit gap; beams: smallest gap among the top 2*beams+1 candidates "
          "at that step or later); graph: vlmserve's decode step replayed as a CUDA graph")


def out_of_time(*_):
    raise OutOfTime()


def main():
    args = parse_args()
    run_row.start = start = time.time()
    signal.signal(signal.SIGALRM, out_of_time)
    os.makedirs(args.work, exist_ok=True)
    photos = [os.path.join(args.images, p) for p in PHOTOS if os.path.exists(os.path.join(args.images, p))]
    if not photos:
        sys.exit(f"run.py: no photos in {args.images}")
    import torch
    import transformers
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    header = (f"== Florence-2: vlmserve vs transformers {transformers.__version__} (sdpa), torch {torch.__version__}, "
              f"{device_name}; random weights; batch of B = photos[i % {len(photos)}]; median of {args.repeats} "
              f"after {args.warmup} warm-up; decoder-step rows: batch x 1 rows, {args.cache_length} cached positions")
    jsonl = open(args.jsonl, "w") if args.jsonl else None
    rows, results, skipped, built, failed = plan(args), [], [], {}, False
    for i, row in enumerate(rows):
        left = args.budget_s - (time.time() - start)
        if left < 15:
            skipped = rows[i:]
            break
        try:
            model = checkpoint(row["shape"], args.work, built)
            ours, ref = run_row(row, model, photos, args, args.budget_s - (time.time() - start))
        except (OutOfTime, subprocess.TimeoutExpired):
            results.append((row, {"error": "cut at the time budget"}))
            skipped = rows[i + 1:]
            break
        except Exception as e:  # a failing row is reported and the others still run
            results.append((row, {"error": f"failed: {type(e).__name__}: {str(e)[-400:]}"}))
            failed = True
            continue
        if jsonl:
            jsonl.write(json.dumps(ours) + "\n" + json.dumps(ref) + "\n")
            jsonl.flush()
        cells = summary(row, ours, ref)
        results.append((row, cells))
        print(f"# {row['shape']} {row['dtype']} B{row['batch']} {row['name']}: vlmserve {ours['ms']:.1f} ms, "
              f"transformers {ref['ms']:.1f} ms, ids {cells.get('same', '-')} [{time.time() - start:.0f} s]",
              file=sys.stderr, flush=True)
        if args.check_fp32 and row["dtype"] == "fp32" and row["part"] == "generate":
            for d, m in zip(ref["first_diff"], ref["margin"]):
                if d is not None and (m is None or m >= args.tie):
                    print(f"run.py: fp32 ids differ at generated index {d} where transformers' margin is {m} "
                          f"(>= {args.tie}): {row}", file=sys.stderr)
                    failed = True
    print_table(results, skipped, header)
    if args.check_fp32 and skipped:
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
