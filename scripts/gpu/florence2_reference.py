"""Florence-2 on the GPU machine: builds a Florence-2-base-shaped random checkpoint (the parity
fixtures' recipe), times transformers' generate (eager and sdpa) and vlmserve on the same photo and
settings, and compares the generated ids.

  python3 scripts/gpu/florence2_reference.py --vlmserve PATH --assets DIR --work DIR [--device cuda]
Prints one table; exits 1 when the fp32 ids differ.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "parity"))


def time_transformers(model, processor, image, ids, gen, device, repeats):
    pixel_values = processor(images=[image], return_tensors="pt")["pixel_values"].to(device, model.dtype)
    input_ids = torch.tensor([[51289] * 577 + ids], device=device)
    times, out = [], None
    for _ in range(repeats + 1):
        torch.cuda.synchronize() if device == "cuda" else None
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, pixel_values=pixel_values, **gen)
        torch.cuda.synchronize() if device == "cuda" else None
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times[1:]), out[0].tolist()


def time_vlmserve(binary, model_dir, image_path, half, device, repeats, out_dir):
    folder = os.path.join(out_dir, "images")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for i in range(repeats + 1):
        os.symlink(os.path.abspath(image_path), os.path.join(folder, f"{i:02d}.jpg"))
    cmd = [binary, "detect", folder, "--model", model_dir, "--task", "<OD>", "--device", device]
    if half:
        cmd.append("--half")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    records.sort(key=lambda r: r["path"])
    times = [r["timings"]["inference_ms"] for r in records]
    return statistics.median(times[1:]), records[0]["generated_ids"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vlmserve", required=True)
    parser.add_argument("--assets", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fp32-only", action="store_true", help="skip vlmserve --half (slow on a CPU)")
    parser.add_argument("--tiny", action="store_true", help="tiny config (a smoke test of this script)")
    args = parser.parse_args()
    os.environ["VLM_ASSETS"] = args.assets
    # PyTorch runs cuDNN convolutions in TF32 by default; vlmserve turns TF32 off (src/runtime.cpp).
    # The fp32 reference must be fp32 too, or DaViT's convolutions differ by ~1e-3.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    import florence2_make_fixtures as fx
    from transformers import AutoImageProcessor, Florence2ForConditionalGeneration
    from tokenizers import Tokenizer

    shape = fx.TINY if args.tiny else fx.BASE
    model = fx.build_model(shape, seed=4321)
    native_dir, _ = fx.save_both_layouts(model, shape, args.work, "gpu")
    processor = AutoImageProcessor.from_pretrained(native_dir)
    tokenizer = Tokenizer.from_file(os.path.join(fx.ONNX_BASE, "tokenizer.json"))
    ids = fx.prompt_ids(tokenizer, "<OD>", "")
    image_path = os.path.join(args.assets, "images", "dog.jpg")
    image = Image.open(image_path).convert("RGB")
    settings = {"beam3_64": dict(num_beams=3, max_new_tokens=64), "greedy_256": dict(num_beams=1, max_new_tokens=256)}
    rows, failed = [], False
    for name, extra in settings.items():
        gen = dict(fx.GENERATION, **extra)
        if gen["num_beams"] == 1:
            gen.pop("early_stopping")
        model_dir = os.path.join(args.work, "model_" + name)
        shutil.rmtree(model_dir, ignore_errors=True)
        shutil.copytree(native_dir, model_dir, symlinks=True)
        with open(os.path.join(model_dir, "generation_config.json"), "w") as f:
            json.dump(dict(fx.GENERATION, **extra), f)
        ref = {}
        for attn in ("eager", "sdpa"):
            m = Florence2ForConditionalGeneration.from_pretrained(native_dir, attn_implementation=attn,
                                                                  dtype=torch.float32).to(args.device).eval()
            ref[attn] = time_transformers(m, processor, image, ids, gen, args.device, args.repeats)
            del m
        for half in (False,) if args.fp32_only else (False, True):
            ms, ours = time_vlmserve(args.vlmserve, model_dir, image_path, half, args.device, args.repeats, args.work)
            same = ours == ref["sdpa"][1]
            if not half and not same:
                failed = True
            first = next((i for i, (a, b) in enumerate(zip(ours, ref["sdpa"][1])) if a != b), None)
            rows.append((name, "fp16" if half else "fp32", ms, ref["eager"][0], ref["sdpa"][0], len(ours) - 1, same,
                         ref["eager"][1] == ref["sdpa"][1], first))
    print(f"{'setting':<11} {'ours':<5} {'vlmserve ms':>11} {'hf eager ms':>11} {'hf sdpa ms':>10} "
          f"{'eager/ours':>10} {'sdpa/ours':>9} {'tokens':>6} ids==hf_sdpa first_diff hf_eager==hf_sdpa")
    for name, dtype, ms, eager, sdpa, tokens, same, hf_same, first in rows:
        print(f"{name:<11} {dtype:<5} {ms:11.1f} {eager:11.1f} {sdpa:10.1f} {eager / ms:10.2f} {sdpa / ms:9.2f} "
              f"{tokens:6d} {str(same):<11} {str(first):<10} {hf_same}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
