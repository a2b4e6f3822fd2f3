"""Florence-2 on the GPU machine: builds a Florence-2-base-shaped random checkpoint (the parity
fixtures' recipe) and compares the ids `vlmserve detect` generates (fp32, fp16 with the flash kernel
and with eager attention) with transformers' on every photo. Timings are bench/florence2's job
(scripts/gpu/florence2_bench.sh): same batch and dtype on both sides.

  python3 scripts/gpu/florence2_reference.py --vlmserve PATH --assets DIR --work DIR [--device cuda]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "parity"))


def detect_folder(binary, model_dir, links, half, device, attention, out_dir):
    """Records of one `vlmserve detect <OD>` over a folder of symlinks {name: photo}, sorted by path."""
    folder = os.path.join(out_dir, "photos")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for name, path in links.items():
        os.symlink(os.path.abspath(path), os.path.join(folder, name))
    cmd = [binary, "detect", folder, "--model", model_dir, "--task", "<OD>", "--device", device,
           "--attention", attention] + (["--half"] if half else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return sorted(records, key=lambda r: r["path"])


def run_vlmserve(binary, model_dir, image_paths, half, device, attention, out_dir):
    """Generated ids per photo name from one `vlmserve detect` over a folder of the photos."""
    links = {os.path.basename(p): p for p in image_paths}
    records = detect_folder(binary, model_dir, links, half, device, attention, out_dir)
    return {os.path.basename(r["path"]): r["generated_ids"] for r in records}


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def attention_comparison(fx, native_dir, processor, tokenizer, image_paths, device, work):
    """Greedy <OD>, 64 new tokens, on every photo: transformers fp32 (sdpa) as the reference, with
    its top-1/top-2 logit margin at every step; transformers fp16 (sdpa); vlmserve fp32 and fp16
    with the flash kernel and with eager attention. Prints where each run first leaves the
    reference and the reference's margin there (a small margin means a near-tie that any rounding
    change may flip), and whether flash and eager agree in fp16."""
    from transformers import Florence2ForConditionalGeneration
    gen = dict(fx.GENERATION, num_beams=1, max_new_tokens=64)
    gen.pop("early_stopping")
    model_dir = os.path.join(work, "model_greedy_64")
    shutil.rmtree(model_dir, ignore_errors=True)
    shutil.copytree(native_dir, model_dir, symlinks=True)
    with open(os.path.join(model_dir, "generation_config.json"), "w") as f:
        json.dump(dict(fx.GENERATION, num_beams=1, max_new_tokens=64), f)
    ids = fx.prompt_ids(tokenizer, "<OD>", "")
    ref, margins, hf16 = {}, {}, {}
    for dtype in (torch.float32, torch.float16):
        m = Florence2ForConditionalGeneration.from_pretrained(native_dir, attn_implementation="sdpa",
                                                              dtype=dtype).to(device).eval()
        for path in image_paths:
            image = Image.open(path).convert("RGB")
            pixel_values = processor(images=[image], return_tensors="pt")["pixel_values"].to(device, dtype)
            input_ids = torch.tensor([[51289] * 577 + ids], device=device)
            with torch.no_grad():
                out = m.generate(input_ids=input_ids, pixel_values=pixel_values, output_scores=True,
                                 return_dict_in_generate=True, **gen)
            name = os.path.basename(path)
            if dtype == torch.float32:
                ref[name] = out.sequences[0].tolist()
                # scores[t] are the processed logits that chose token t+1 (token 0 is decoder start).
                margins[name] = [float(t[0] - t[1]) for t in (sc[0].float().topk(2).values for sc in out.scores)]
            else:
                hf16[name] = out.sequences[0].tolist()
        del m
    runs = {"hf fp16 sdpa": hf16}
    fast = "flash" if device == "cuda" else "sdpa"  # sdpa only for a CPU smoke run of this script
    # fp32 has no flash kernel: auto is eager there (explicit --attention flash is refused for fp32).
    for half in (False, True):
        for attention in (fast, "eager") if half else ("auto",):
            label = f"ours {'fp16' if half else 'fp32'} {attention}"
            runs[label] = run_vlmserve(VLMSERVE, model_dir, image_paths, half, device, attention, work)
    print("\n== greedy <OD> 64 tokens per photo: first token that differs from transformers fp32 sdpa "
          "(None = identical) and the reference's top-1/top-2 logit margin at that step")
    print(f"{'run':<16} " + " ".join(f"{os.path.basename(p):>18}" for p in image_paths))
    for label, got in runs.items():
        cells = []
        for path in image_paths:
            name = os.path.basename(path)
            d = first_diff(got[name], ref[name])
            margin = margins[name][d - 1] if d is not None and 0 < d <= len(margins[name]) else None
            cells.append(f"{'same' if d is None else f'@{d} m={margin:.2g}' if margin is not None else f'@{d}':>18}")
        print(f"{label:<16} " + " ".join(cells))
    flash16, eager16 = runs[f"ours fp16 {fast}"], runs["ours fp16 eager"]
    diverged = [n for n in flash16 if flash16[n] != eager16[n]]
    tokens = sum(len(v) - 1 for v in flash16.values())
    agree = sum(sum(1 for a, b in zip(flash16[n], eager16[n]) if a == b) - 1 for n in flash16)
    print(f"ours fp16 {fast} vs eager: {len(flash16) - len(diverged)}/{len(flash16)} photos identical, "
          f"{agree}/{tokens} positions equal; diverging photos: "
          + (", ".join(f"{n} @{first_diff(flash16[n], eager16[n])}" for n in diverged) or "none"))
    return runs


VLMSERVE = None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vlmserve", required=True)
    parser.add_argument("--assets", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny config (a smoke test of this script)")
    args = parser.parse_args()
    global VLMSERVE
    VLMSERVE = args.vlmserve
    os.environ["VLM_ASSETS"] = args.assets
    # PyTorch runs cuDNN convolutions in TF32 by default; vlmserve turns TF32 off (src/runtime.cpp).
    # The fp32 reference must be fp32 too, or DaViT's convolutions differ by ~1e-3.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    import florence2_make_fixtures as fx
    from transformers import AutoImageProcessor
    from tokenizers import Tokenizer

    shape = fx.TINY if args.tiny else fx.BASE
    model = fx.build_model(shape, seed=4321)
    native_dir, _ = fx.save_both_layouts(model, shape, args.work, "gpu")
    processor = AutoImageProcessor.from_pretrained(native_dir)
    tokenizer = Tokenizer.from_file(os.path.join(fx.ONNX_BASE, "tokenizer.json"))
    if args.device == "cuda" or args.tiny:
        photos = sorted(os.path.join(args.assets, "images", f) for f in os.listdir(os.path.join(args.assets, "images"))
                        if f.endswith(".jpg"))
        attention_comparison(fx, native_dir, processor, tokenizer, photos, args.device, args.work)


if __name__ == "__main__":
    main()
