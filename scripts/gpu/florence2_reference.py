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


def time_vlmserve(binary, model_dir, image_path, half, device, repeats, out_dir):
    """Median inference time over `repeats` runs of one photo (after a warm-up) and its generated ids."""
    links = {f"{i:02d}.jpg": image_path for i in range(repeats + 1)}
    records = detect_folder(binary, model_dir, links, half, device, "auto", out_dir)
    times = [r["timings"]["inference_ms"] for r in records]
    return statistics.median(times[1:]), records[0]["generated_ids"]


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


def beam_on_cpu(fx, native_dir, processor, tokenizer, image_path):
    """transformers fp32 on the CPU, 3 beams / 64 tokens: is the GPU beam divergence a property of the
    checkpoint (transformers itself changes its beams with the device) or of vlmserve?"""
    from transformers import Florence2ForConditionalGeneration
    m = Florence2ForConditionalGeneration.from_pretrained(native_dir, attn_implementation="sdpa",
                                                          dtype=torch.float32).eval()
    gen = dict(fx.GENERATION, num_beams=3, max_new_tokens=64)
    pixel_values = processor(images=[Image.open(image_path).convert("RGB")], return_tensors="pt")["pixel_values"]
    input_ids = torch.tensor([[51289] * 577 + fx.prompt_ids(tokenizer, "<OD>", "")])
    with torch.no_grad():
        return m.generate(input_ids=input_ids, pixel_values=pixel_values, **gen)[0].tolist()


VLMSERVE = None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vlmserve", required=True)
    parser.add_argument("--assets", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fp32-only", action="store_true", help="skip vlmserve --half (slow on a CPU)")
    parser.add_argument("--tiny", action="store_true", help="tiny config (a smoke test of this script)")
    parser.add_argument("--skip-timing", action="store_true", help="only the attention/beam comparisons")
    args = parser.parse_args()
    global VLMSERVE
    VLMSERVE = args.vlmserve
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
    beam_ids = {}
    for name, extra in ({} if args.skip_timing else settings).items():
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
            if name == "beam3_64" and not half:
                beam_ids = {"hf gpu": ref["sdpa"][1], "ours gpu": ours}
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
    if beam_ids and beam_ids["hf gpu"] != beam_ids["ours gpu"]:
        cpu = beam_on_cpu(fx, native_dir, processor, tokenizer, image_path)
        print(f"\n== 3 beams / 64 tokens, fp32: transformers CPU vs transformers GPU first diff "
              f"{first_diff(cpu, beam_ids['hf gpu'])}, vs vlmserve GPU {first_diff(cpu, beam_ids['ours gpu'])}; "
              f"transformers GPU vs vlmserve GPU {first_diff(beam_ids['hf gpu'], beam_ids['ours gpu'])}")
    if args.device == "cuda" or args.tiny:
        photos = sorted(os.path.join(args.assets, "images", f) for f in os.listdir(os.path.join(args.assets, "images"))
                        if f.endswith(".jpg"))
        attention_comparison(fx, native_dir, processor, tokenizer, photos, args.device, args.work)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
