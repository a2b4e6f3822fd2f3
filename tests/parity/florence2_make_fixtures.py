"""Test setup for the Florence-2 parity tests: random-weight checkpoints (fixed seeds) saved by the
pinned transformers in both name layouts, plus reference outputs and broken checkpoints.

Writes $VLM_TEST_DATA/florence2/:
  tiny_native/     transformers-native layout, model.safetensors, florence-community style config
  tiny_original/   Microsoft remote-code layout, pytorch_model.bin, Microsoft style config.json
  tiny_refs.safetensors   per photo: decoded RGB, pixel_values, vision/image features, encoder output,
                          first-step logits (<OD>); per task: prompt ids, greedy and beam-3 ids, the
                          reference's decision margin at every step, the running beams per step and
                          each generated token's log-probability (generation_margins.py); for <OD>,
                          the same under each per-request setting of CONTROLS
  tasks_native/, tasks_original/, tasks_refs.json   the tiny model taught to answer in each task's format,
                          and transformers' post-processed answers on it (florence2_task_refs.py)
  base_native/, base_original/, base_refs.safetensors   Florence-2-base shapes, one forward (--base)
  broken_*/        loading-error cases
The original layout is produced with the inverse of transformers' conversion renames, written here
independently of the C++ table so that the two check each other.
"""
import argparse
import collections
import copy
import glob
import json
import os
import shutil
import sys
import time
import types

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from transformers import AutoImageProcessor, Florence2Config, Florence2ForConditionalGeneration, Florence2Processor

import florence2_task_refs
from generation_margins import generate_with_margins

ASSETS = os.environ.get("VLM_ASSETS", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "assets"))
F2 = os.path.join(ASSETS, "florence2")
MS_BASE = os.path.join(F2, "Florence-2-base")
ONNX_BASE = os.path.join(F2, "onnx-community-Florence-2-base")
VOCAB = 51328  # 51289 + <image>, padded to 64 as transformers' conversion does
NUM_IMAGE_TOKENS = 577
MAX_NEW_TOKENS = 20

TASKS = [
    ("<CAPTION>", ""), ("<DETAILED_CAPTION>", ""), ("<MORE_DETAILED_CAPTION>", ""), ("<OD>", ""),
    ("<DENSE_REGION_CAPTION>", ""), ("<REGION_PROPOSAL>", ""), ("<CAPTION_TO_PHRASE_GROUNDING>", "a bus and two people"),
    ("<REFERRING_EXPRESSION_SEGMENTATION>", "the dog"), ("<REGION_TO_SEGMENTATION>", "<loc_100><loc_200><loc_500><loc_700>"),
    ("<OPEN_VOCABULARY_DETECTION>", "horse"), ("<REGION_TO_CATEGORY>", "<loc_52><loc_332><loc_932><loc_774>"),
    ("<REGION_TO_DESCRIPTION>", "<loc_52><loc_332><loc_932><loc_774>"), ("<OCR>", ""), ("<OCR_WITH_REGION>", ""),
]

TINY = dict(
    vision=dict(depths=[1, 1, 2, 1], embed_dim=[16, 32, 48, 64], num_heads=[1, 2, 3, 4], num_groups=[1, 2, 3, 4],
                projection_dim=32),
    text=dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
              encoder_ffn_dim=64, decoder_ffn_dim=64),
)
BASE = dict(
    vision=dict(depths=[1, 1, 9, 1], embed_dim=[128, 256, 512, 1024], num_heads=[4, 8, 16, 32],
                num_groups=[4, 8, 16, 32], projection_dim=768),
    text=dict(d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12, decoder_attention_heads=12,
              encoder_ffn_dim=3072, decoder_ffn_dim=3072),
)
GENERATION = dict(bos_token_id=0, eos_token_id=2, pad_token_id=1, decoder_start_token_id=2, forced_bos_token_id=0,
                  forced_eos_token_id=2, no_repeat_ngram_size=3, num_beams=3, early_stopping=True,
                  length_penalty=1.0, max_new_tokens=MAX_NEW_TOKENS)


# Per-request generation settings (DetectOptions) over <OD>, each changing the answer from the
# checkpoint's GENERATION: greedy shorter and without the n-gram ban; 2 beams, "never", a length
# penalty and a 2-gram ban; 4 beams, early_stopping false, a negative length penalty.
CONTROLS_TASK = "<OD>"
CONTROLS = [
    dict(num_beams=1, no_repeat_ngram_size=0, max_new_tokens=7),
    dict(num_beams=2, length_penalty=2.0, early_stopping="never", no_repeat_ngram_size=2, max_new_tokens=12),
    dict(num_beams=4, early_stopping=False, length_penalty=-0.5, max_new_tokens=16),
]


def photos():
    return sorted(glob.glob(os.path.join(ASSETS, "images", "**", "*.jpg"), recursive=True))


def build_model(shape, seed):
    torch.manual_seed(seed)
    config = Florence2Config(
        vision_config=dict(shape["vision"]),
        text_config=dict(vocab_size=VOCAB, max_position_embeddings=1024, scale_embedding=False,
                         init_std=0.1, **shape["text"]),
        image_token_id=51289,
    )
    model = Florence2ForConditionalGeneration(config).eval()
    # transformers' init leaves LayerNorms at 1/0 and biases at 0; randomise them so the checks see them.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.05)
    return model


def copy_tokenizer(source, dest):
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "added_tokens.json",
                 "special_tokens_map.json"):
        if os.path.exists(os.path.join(source, name)):
            shutil.copy(os.path.join(source, name), dest)


def original_name(native):
    """Inverse of transformers' convert_florence2_original_pytorch_to_hf renames."""
    n = native
    if n.startswith("model.vision_tower."):
        n = n[len("model."):]
        parts = n.split(".")
        if parts[1] == "convs":
            return n.replace(".conv.", ".proj.")
        block = ".".join(parts[:5])  # vision_tower.blocks.s.b.spatial_block
        rest = ".".join(parts[5:])
        attn = "window_attn" if parts[4] == "spatial_block" else "channel_attn"
        rules = [("conv1.", "conv1.fn.dw."), ("conv2.", "conv2.fn.dw."), ("norm1.", attn + ".norm."),
                 (attn + ".", attn + ".fn."), ("norm2.", "ffn.norm."), ("ffn.", "ffn.fn.net.")]
        for old, new in rules:
            if rest.startswith(old):
                return block + "." + new + rest[len(old):]
        raise KeyError(native)
    if n.startswith("model.multi_modal_projector."):
        n = n[len("model.multi_modal_projector."):]
        if n == "image_projection.weight":
            return "image_projection"
        return n.replace("image_position_embed.", "image_pos_embed.")
    if n.startswith("model.language_model."):
        return "language_model.model." + n[len("model.language_model."):]
    raise KeyError(native)


def original_config(model, shape):
    v, t = shape["vision"], dict(shape["text"])
    ms = json.load(open(os.path.join(MS_BASE, "config.json")))
    ms["vision_config"].update(dict(dim_embed=v["embed_dim"], depths=v["depths"], num_heads=v["num_heads"],
                                    num_groups=v["num_groups"], projection_dim=v["projection_dim"]))
    ms["projection_dim"] = v["projection_dim"]
    ms["text_config"].update(t)
    ms["text_config"]["vocab_size"] = VOCAB
    ms["vocab_size"] = VOCAB
    ms.pop("auto_map", None)
    return ms


def save_both_layouts(model, shape, out, prefix):
    native_dir = os.path.join(out, prefix + "_native")
    original_dir = os.path.join(out, prefix + "_original")
    for d in (native_dir, original_dir):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    model.save_pretrained(native_dir)
    with open(os.path.join(native_dir, "generation_config.json"), "w") as f:
        json.dump(GENERATION, f, indent=2)
    shutil.copy(os.path.join(MS_BASE, "preprocessor_config.json"), native_dir)
    copy_tokenizer(ONNX_BASE, native_dir)

    state = load_file(os.path.join(native_dir, "model.safetensors"))
    original = collections.OrderedDict()
    for name, tensor in state.items():
        new = original_name(name)
        original[new] = tensor.t().contiguous() if new == "image_projection" else tensor
    shared = state["model.language_model.shared.weight"]
    original["language_model.model.encoder.embed_tokens.weight"] = shared
    original["language_model.model.decoder.embed_tokens.weight"] = shared
    original["language_model.lm_head.weight"] = shared
    original["language_model.final_logits_bias"] = torch.zeros(1, VOCAB)
    last = shape["vision"]["embed_dim"][-1]
    original["vision_tower.norms.weight"] = torch.randn(last)
    original["vision_tower.norms.bias"] = torch.randn(last)
    torch.save(original, os.path.join(original_dir, "pytorch_model.bin"))
    with open(os.path.join(original_dir, "config.json"), "w") as f:
        json.dump(original_config(model, shape), f, indent=2)
    shutil.copy(os.path.join(MS_BASE, "preprocessor_config.json"), original_dir)
    copy_tokenizer(MS_BASE, original_dir)
    return native_dir, original_dir


def prompt_ids(tokenizer, task, text):
    tables = json.load(open(os.path.join(ONNX_BASE, "preprocessor_config.json")))
    holder = types.SimpleNamespace(task_prompts_without_inputs=tables["task_prompts_without_inputs"],
                                   task_prompts_with_input=tables["task_prompts_with_input"])
    prompt = Florence2Processor._construct_prompts(holder, task + text)[0]
    # The processor tokenizes "<image>"*577 + "<s>" + prompt + "</s>" without adding specials.
    return [0] + tokenizer.encode(prompt, add_special_tokens=False).ids + [2]


def load_rgb(path):
    return np.array(Image.open(path).convert("RGB"))


def forward_refs(model, processor, images, ids, tag, refs):
    pixel_values = processor(images=[Image.fromarray(im) for im in images], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        vision = model.model.vision_tower(pixel_values).last_hidden_state
        image_features = model.model.get_image_features(pixel_values).pooler_output
        input_ids = torch.tensor([[51289] * NUM_IMAGE_TOKENS + ids] * len(images))
        out = model(input_ids=input_ids, pixel_values=pixel_values,
                    decoder_input_ids=torch.full((len(images), 1), 2, dtype=torch.long))
    refs[f"{tag}.pixel_values"] = pixel_values.contiguous()
    refs[f"{tag}.vision_features"] = vision.contiguous()
    refs[f"{tag}.image_features"] = image_features.contiguous()
    refs[f"{tag}.encoder_output"] = out.encoder_last_hidden_state.contiguous()
    refs[f"{tag}.logits"] = out.logits[:, 0, :].contiguous()
    refs[f"{tag}.prompt_ids"] = torch.tensor(ids, dtype=torch.int64)
    return pixel_values


def generation_refs(model, tokenizer, image_features, batch, refs):
    """Per task: greedy and beam-3 ids over all photos in one batch, with the reference's margins."""
    with torch.no_grad():
        # The vision tower does not depend on the task: run it once and hand generate() the encoder
        # output it would compute itself (image tokens scattered into the prompt embeddings).
        for t, (task, text) in enumerate(TASKS):
            ids = prompt_ids(tokenizer, task, text)
            refs[f"task{t}.prompt_ids"] = torch.tensor(ids, dtype=torch.int64)
            input_ids = torch.tensor([[51289] * NUM_IMAGE_TOKENS + ids] * batch)
            embeds = model.get_input_embeddings()(input_ids)
            mask = (input_ids == 51289).unsqueeze(-1)
            embeds = embeds.masked_scatter(mask, image_features)
            encoder_outputs = model.model.language_model.encoder(inputs_embeds=embeds)
            for mode, beams in (("greedy", 1), ("beam", 3)):
                gen = dict(GENERATION, num_beams=beams)
                if beams == 1:
                    gen.pop("early_stopping")
                out, margins, running, log_probs = generate_with_margins(
                    model, gen, input_ids=input_ids, encoder_outputs=copy.deepcopy(encoder_outputs))
                refs[f"task{t}.{mode}"] = out.contiguous()
                refs[f"task{t}.{mode}.margin"] = margins.contiguous()
                refs[f"task{t}.{mode}.log_probs"] = log_probs
                if running is not None:
                    refs[f"task{t}.{mode}.running"] = running.contiguous()
            if task != CONTROLS_TASK:
                continue
            for c, control in enumerate(CONTROLS):
                gen = dict(GENERATION, **control)
                if gen["num_beams"] == 1:
                    gen.pop("early_stopping")
                out, margins, running, log_probs = generate_with_margins(
                    model, gen, input_ids=input_ids, encoder_outputs=copy.deepcopy(encoder_outputs))
                refs[f"control{c}"] = out.contiguous()
                refs[f"control{c}.margin"] = margins.contiguous()
                refs[f"control{c}.log_probs"] = log_probs
                if running is not None:
                    refs[f"control{c}.running"] = running.contiguous()


def make_broken(out, tiny_native, tiny_original):
    def clone(name):
        d = os.path.join(out, "broken_" + name)
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(tiny_native, d)
        return d

    state = load_file(os.path.join(tiny_native, "model.safetensors"))
    d = clone("missing")
    s = dict(state)
    del s["model.language_model.decoder.layers.1.fc2.weight"]
    save_file(s, os.path.join(d, "model.safetensors"))
    d = clone("shape")
    s = dict(state)
    s["model.language_model.encoder.layers.0.fc1.weight"] = s["model.language_model.encoder.layers.0.fc1.weight"].t().contiguous()
    save_file(s, os.path.join(d, "model.safetensors"))
    d = clone("dtype")
    s = dict(state)
    s["model.multi_modal_projector.image_proj_norm.weight"] = torch.arange(32, dtype=torch.int32)
    save_file(s, os.path.join(d, "model.safetensors"))
    d = clone("extra")
    s = dict(state)
    s["model.vision_tower.blocks.0.0.spatial_block.unexpected.weight"] = torch.zeros(3)
    save_file(s, os.path.join(d, "model.safetensors"))
    d = clone("truncated")
    path = os.path.join(d, "model.safetensors")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    d = os.path.join(out, "broken_truncated_bin")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(tiny_original, d)
    path = os.path.join(d, "pytorch_model.bin")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def build_base(out, tokenizer, paths, start):
    model = build_model(BASE, seed=4321)
    native_dir, _ = save_both_layouts(model, BASE, out, "base")
    processor = AutoImageProcessor.from_pretrained(native_dir)
    refs = {}
    im = load_rgb([p for p in paths if p.endswith("dog.jpg")][0])
    refs["image0.rgb"] = torch.from_numpy(im.copy())
    forward_refs(model, processor, [im], prompt_ids(tokenizer, "<OD>", ""), "base", refs)
    save_file(refs, os.path.join(out, "base_refs.safetensors"))
    print(f"base fixtures in {time.time() - start:.1f}s", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-only", action="store_true", help="build only the Florence-2-base-shaped fixtures")
    parser.add_argument("--out", default=os.path.join(os.environ.get("VLM_TEST_DATA", "build/test_data"), "florence2"))
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    tokenizer = Tokenizer.from_file(os.path.join(ONNX_BASE, "tokenizer.json"))

    paths = photos()
    if args.base_only:
        build_base(args.out, tokenizer, paths, start)
        return
    model = build_model(TINY, seed=1234)
    tiny_native, tiny_original = save_both_layouts(model, TINY, args.out, "tiny")
    processor = AutoImageProcessor.from_pretrained(tiny_native)
    print("image processor:", type(processor).__name__, file=sys.stderr)
    images = [load_rgb(p) for p in paths]
    refs = {}
    for i, (path, im) in enumerate(zip(paths, images)):
        refs[f"image{i}.rgb"] = torch.from_numpy(im.copy())
    ids = prompt_ids(tokenizer, "<OD>", "")
    pixel_values = forward_refs(model, processor, images, ids, "tiny", refs)
    with torch.no_grad():
        image_features = model.model.get_image_features(pixel_values).pooler_output
    make_broken(args.out, tiny_native, tiny_original)

    # Tiny tensors, many small ops: a second thread gains little alone and, on a loaded 2-core
    # machine, OpenMP barriers waiting for a descheduled thread made generate() 20-40x slower.
    torch.set_num_threads(1)
    # Generation is compared on the taught copy: the random model's distributions are nearly flat, so
    # its beams decide near-ties at most steps (about 70 of 180 beam decisions per task within 1e-4),
    # and exact ids would test the CPU's floating-point order. Teaching leaves a few per task.
    cases = florence2_task_refs.cases(len(paths))
    taught = copy.deepcopy(model)  # same vision tower and projector, so image_features above still hold
    loss = florence2_task_refs.teach_task_formats(taught, image_features, cases, lambda task, text: prompt_ids(
        tokenizer, task, text), tokenizer, 51289, MAX_NEW_TOKENS)
    tasks_native, _ = save_both_layouts(taught, TINY, args.out, "tasks")
    print(f"taught the task formats (loss {loss:.3f}) in {time.time() - start:.1f}s", file=sys.stderr)
    generation_refs(taught, tokenizer, image_features, len(images), refs)
    save_file(refs, os.path.join(args.out, "tiny_refs.safetensors"),
              metadata={"images": json.dumps([os.path.relpath(p, ASSETS) for p in paths]),
                        "tasks": json.dumps(TASKS), "max_new_tokens": str(MAX_NEW_TOKENS),
                        "controls": json.dumps(CONTROLS), "controls_task": CONTROLS_TASK,
                        "generation_checkpoint": "tasks"})
    print(f"generation references in {time.time() - start:.1f}s", file=sys.stderr)
    florence2_task_refs.write_task_refs(taught, tasks_native, paths, ASSETS, cases, GENERATION,
                                        os.path.join(args.out, "tasks_refs.json"), loss)
    print(f"task answers in {time.time() - start:.1f}s", file=sys.stderr)

    with open(os.path.join(args.out, "READY"), "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    main()
