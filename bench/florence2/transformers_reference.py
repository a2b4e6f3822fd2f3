"""transformers' side of the Florence-2 benchmark: the options and the JSON line of
bench_florence2 (see bench_florence2.cpp for the modes), for Florence2ForConditionalGeneration with
attn_implementation="sdpa" in the same dtype, on the same photos and generation settings.

  python transformers_reference.py --model DIR --images a.jpg,b.jpg --device cuda --dtype fp16 \
      --batch 8 --mode generate --task "<OD>" --num-beams 3 --max-new-tokens 64 [--suppress-eos] \
      [--ours LINE.json]

With --ours (vlmserve's JSON line for the same row) the line also says, per row, whether the ids
are identical, the first generated step where they differ and the reference's own margin there:
greedy: the top-1/top-2 gap of the processed logits at that step; beams: the smallest gap between
neighbours among the top 2*num_beams+1 candidate scores (running score + processed log-prob) at that
step or later, i.e. how close the reference itself was to choosing other beams.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "parity"))

IMAGE_TOKEN_ID = 51289
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--images", required=True, help="comma-separated photos; row i is photo i %% count")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    p.add_argument("--mode", default="generate", choices=["generate", "vision", "decoder-step"])
    p.add_argument("--task", default="<OD>")
    p.add_argument("--attention", default="sdpa")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--suppress-eos", action="store_true")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cache-length", type=int, default=128)
    p.add_argument("--ours", help="vlmserve's JSON line for this row: compare ids, report margins")
    return p.parse_args(argv)


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_calls(device, warmup, repeats, call):
    for _ in range(warmup):
        call()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        sync(device)
        times.append((time.perf_counter() - start) * 1000)
    return times


def generated_tokens(rows, eos_ids):
    """Tokens after the start token up to and including the first EOS, summed over rows (the rule
    bench_florence2 applies)."""
    total = 0
    for row in rows:
        n = len(row) - 1
        for i in range(1, len(row)):
            if row[i] in eos_ids:
                n = i
                break
        total += n
    return total


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


class BeamMargins:
    """A last logits processor that records, per step and batch item, the smallest gap between
    neighbours among the top 2*num_beams+1 accumulated candidate scores. output_scores holds the
    processed log-probs per beam but not the running beam scores they are added to, so those are
    rebuilt here the way transformers' _beam_search picks its running beams: the best num_beams of
    its top max(2, 1 + #eos)*num_beams candidates, candidates ending in EOS pushed down by 1e9."""

    def __init__(self, batch, beams, eos_ids):
        self.batch, self.beams = batch, beams
        self.eos = torch.tensor(eos_ids)
        self.keep = max(2, 1 + len(eos_ids)) * beams
        self.running = None
        self.steps = []  # steps[t][b]

    def __call__(self, input_ids, scores):
        vocab = scores.shape[-1]
        if self.running is None:
            self.running = torch.full((self.batch, self.beams), -1.0e9, device=scores.device)
            self.running[:, 0] = 0
        acc = (scores.float().view(self.batch, self.beams, vocab) + self.running[:, :, None]).view(self.batch, -1)
        top = acc.topk(max(self.keep, 2 * self.beams + 1), dim=-1)
        gaps = (top.values[:, : 2 * self.beams] - top.values[:, 1: 2 * self.beams + 1]).min(-1).values
        self.steps.append(gaps.tolist())
        kept, tokens = top.values[:, : self.keep], top.indices[:, : self.keep] % vocab
        kept = kept + torch.isin(tokens, self.eos.to(tokens.device)).float() * -1.0e9
        self.running = kept.gather(1, kept.topk(self.beams, dim=-1).indices)
        return scores

    def margin(self, batch_item, step):
        later = [s[batch_item] for s in self.steps[step:]]
        return min(later) if later else None


_MODELS = {}


def load_model(path, attention, dtype, device):
    """One loaded model at a time, kept across rows of the same checkpoint and dtype (run.py calls
    run_row in-process for every row)."""
    from transformers import Florence2ForConditionalGeneration
    key = (path, attention, dtype, device)
    if key not in _MODELS:
        _MODELS.clear()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        _MODELS[key] = Florence2ForConditionalGeneration.from_pretrained(
            path, attn_implementation=attention, dtype=dtype).to(device).eval()
    return _MODELS[key]


def main(argv=None):
    print(json.dumps(run_row(parse_args(argv))), flush=True)


def run_row(args):
    """The JSON row for parsed options."""
    # vlmserve runs fp32 without TF32 (src/runtime.cpp); the fp32 reference must too.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    import florence2_make_fixtures as fx
    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoImageProcessor, GenerationConfig, LogitsProcessorList
    from transformers.modeling_outputs import BaseModelOutput

    device, dtype = args.device, DTYPES[args.dtype]
    model = load_model(args.model, args.attention, dtype, device)
    processor = AutoImageProcessor.from_pretrained(args.model)
    tokenizer = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    paths = args.images.split(",")
    images = [Image.open(paths[i % len(paths)]).convert("RGB") for i in range(args.batch)]
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"].to(device, dtype)
    prompt = fx.prompt_ids(tokenizer, args.task, "")
    input_ids = torch.tensor([[IMAGE_TOKEN_ID] * fx.NUM_IMAGE_TOKENS + prompt] * args.batch, device=device)
    generation = GenerationConfig.from_pretrained(args.model)
    eos = generation.eos_token_id
    eos_ids = eos if isinstance(eos, list) else [eos]
    gen = dict(num_beams=args.num_beams, max_new_tokens=args.max_new_tokens)
    if args.suppress_eos:
        gen["min_new_tokens"] = args.max_new_tokens

    row = dict(side="transformers", mode=args.mode, device=device, dtype=args.dtype, batch=args.batch, task=args.task,
               num_beams=args.num_beams, max_new_tokens=args.max_new_tokens, suppress_eos=args.suppress_eos,
               attention=args.attention, transformers=transformers.__version__)
    with torch.no_grad():
        if args.mode == "generate":
            out = {}

            def call():
                out["ids"] = model.generate(input_ids=input_ids, pixel_values=pixel_values, **gen)

            times = time_calls(device, args.warmup, args.repeats, call)
            ids = out["ids"].tolist()
            row["tokens"] = generated_tokens(ids, eos_ids)
            row["ids"] = ids
        elif args.mode == "vision":
            times = time_calls(device, args.warmup, args.repeats, lambda: model.model.vision_tower(pixel_values))
        else:
            rows_ids = input_ids.repeat_interleave(args.num_beams, 0)
            rows_pixels = pixel_values.repeat_interleave(args.num_beams, 0)
            # The prefix tokens bench_florence2 feeds: 100 + i % 1000, then token 100 at every step.
            prefix = (torch.arange(args.cache_length, device=device) % 1000 + 100).expand(rows_ids.shape[0], -1)
            first = model(input_ids=rows_ids, pixel_values=rows_pixels, decoder_input_ids=prefix, use_cache=True)
            encoder = BaseModelOutput(last_hidden_state=first.encoder_last_hidden_state)
            state = {"cache": first.past_key_values}
            step = torch.full((rows_ids.shape[0], 1), 100, device=device)

            def call():
                state["cache"] = model(encoder_outputs=encoder, decoder_input_ids=step, past_key_values=state["cache"],
                                       use_cache=True).past_key_values

            times = time_calls(device, args.warmup, args.repeats, call)
            row["rows"] = rows_ids.shape[0]
            row["cache_length"] = args.cache_length

        row["ms"] = statistics.median(times)
        row["ms_all"] = times
        if "tokens" in row:
            row["tokens_per_s"] = row["tokens"] / (row["ms"] / 1000)
        if args.ours and args.mode == "generate":
            ours = json.loads(open(args.ours).read())["ids"]
            diffs = [first_diff(a, b) for a, b in zip(ours, row["ids"])]
            if len(ours) != len(row["ids"]):
                diffs = [0] * args.batch
            margins = [None] * args.batch
            if any(d is not None for d in diffs):
                margins = reference_margins(model, input_ids, pixel_values, gen, args, diffs, LogitsProcessorList)
            row["identical"] = [d is None for d in diffs]
            row["first_diff"] = diffs
            row["margin"] = margins
    return row


def reference_margins(model, input_ids, pixel_values, gen, args, diffs, processor_list):
    """The reference's margin at each row's first differing generated step (ids index d is chosen
    at step d - 1), from one more, untimed generate."""
    if args.num_beams == 1:
        out = model.generate(input_ids=input_ids, pixel_values=pixel_values, output_scores=True,
                             return_dict_in_generate=True, **gen)
        margins = []
        for r, d in enumerate(diffs):
            if d is None or d < 1 or d > len(out.scores):
                margins.append(None)
                continue
            top = out.scores[d - 1][r].float().topk(2).values
            margins.append(float(top[0] - top[1]))
        return margins
    eos = model.generation_config.eos_token_id
    recorder = BeamMargins(args.batch, args.num_beams, eos if isinstance(eos, list) else [eos])
    model.generate(input_ids=input_ids, pixel_values=pixel_values, logits_processor=processor_list([recorder]), **gen)
    return [None if d is None or d < 1 else recorder.margin(r, d - 1) for r, d in enumerate(diffs)]


if __name__ == "__main__":
    main()
