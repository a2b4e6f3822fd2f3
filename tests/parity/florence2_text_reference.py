"""Test setup: Florence-2 prompts and post-processing references from the pinned transformers.

Writes $VLM_TEST_DATA/florence2_text/reference.json for florence2_text_parity_test (C++):
  - "prompts": Florence2Processor._construct_prompts on task tokens with and without text,
    including the inputs it rejects;
  - "cases": Florence2Processor.post_process_generation on crafted and seeded-random generated
    texts for every task, several image sizes, under two post-processor configurations:
    "original" (microsoft/Florence-2's: OCR area threshold 0.01 and the phrase-grounding banned
    list) and "no_area_threshold" (what florence-community's converted config amounts to, since
    transformers reads only the upper-case AREA_THRESHOLD key).
The processor is built from microsoft/Florence-2-base's real tokenizer and image processor files,
with Florence's tokens registered as the remote-code processor does.
"""

import json
import os
import random
import sys
from pathlib import Path

import transformers
from transformers import AddedToken, AutoTokenizer, CLIPImageProcessor, Florence2Processor

from tokenizer_reference import FLORENCE_TOKENS  # the task and <loc_*> tokens the processor registers

ASSETS = Path(os.environ.get("VLM_ASSETS", Path(__file__).resolve().parents[2] / ".." / "shared" / "assets"))
OUT = Path(os.environ.get("VLM_TEST_DATA", "build/test-data")) / "florence2_text"
MS_DIR = ASSETS / "florence2" / "Florence-2-base"

# microsoft/Florence-2's processing_florence2.py, Florence2PostProcesser._create_black_list_of_phrase_grounding
# (the same list transformers' conversion script writes into florence-community's processor config).
BANNED = [
    "it", "I", "me", "mine", "you", "your", "yours", "he", "him", "his", "she", "her", "hers", "they", "them",
    "their", "theirs", "one", "oneself", "we", "us", "our", "ours", "you", "your", "yours", "they", "them",
    "their", "theirs", "mine", "yours", "his", "hers", "its", "ours", "yours", "theirs", "myself", "yourself",
    "himself", "herself", "itself", "ourselves", "yourselves", "themselves", "this", "that", "these", "those",
    "who", "whom", "whose", "which", "what", "who", "whom", "whose", "which", "that", "all", "another", "any",
    "anybody", "anyone", "anything", "each", "everybody", "everyone", "everything", "few", "many", "nobody",
    "none", "one", "several", "some", "somebody", "someone", "something", "each other", "one another",
    "myself", "yourself", "himself", "herself", "itself", "ourselves", "yourselves", "themselves",
    "the image", "image", "images", "the", "a", "an", "a group", "other objects", "lots", "a set",
]

TASKS = [
    "<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>", "<OD>", "<DENSE_REGION_CAPTION>",
    "<REGION_PROPOSAL>", "<CAPTION_TO_PHRASE_GROUNDING>", "<REFERRING_EXPRESSION_SEGMENTATION>",
    "<REGION_TO_SEGMENTATION>", "<OPEN_VOCABULARY_DETECTION>", "<REGION_TO_CATEGORY>", "<REGION_TO_DESCRIPTION>",
    "<OCR>", "<OCR_WITH_REGION>", "<REGION_TO_OCR>", "<UNKNOWN_TASK>",
]
SIZES = [(640, 480), (810, 1080), (1280, 720), (1, 1), (999, 7), (333, 777), (4000, 3000)]


def processor(area_threshold, checkpoint_dir=None, image_processor=None):
    """transformers' Florence2Processor as Microsoft's remote code sets it up: the task and <loc_*>
    tokens registered at runtime (no-ops where the tokenizer file has them) and the original
    checkpoints' post-processor settings (OCR area threshold, banned grounding phrases)."""
    tok = AutoTokenizer.from_pretrained(checkpoint_dir or MS_DIR)
    tok.add_special_tokens({"additional_special_tokens": FLORENCE_TOKENS})
    tok.image_token = "<image>"
    tok.add_tokens(AddedToken("<image>", special=True, normalized=False), special_tokens=True)
    tok.image_token_id = tok.convert_tokens_to_ids("<image>")
    config = {
        "ocr": {"AREA_THRESHOLD": area_threshold},
        "phrase_grounding": {"banned_grounding_tokens": BANNED},
        "pure_text": {}, "description_with_bboxes": {}, "description_with_polygons": {}, "polygons": {},
        "bboxes": {}, "description_with_bboxes_or_polygons": {},
    }
    return Florence2Processor(image_processor=image_processor or CLIPImageProcessor.from_pretrained(MS_DIR),
                              tokenizer=tok, post_processor_config=config)


def loc(rng):
    return f"<loc_{rng.randrange(1000)}>"


def locs(rng, n):
    return "".join(loc(rng) for _ in range(n))


def crafted(rng):
    L = lambda n: locs(rng, n)  # noqa: E731
    return [
        "",
        "</s><s>A cat sitting on a mat.</s>",
        "<s> spaced out \n</s><pad><pad>",
        "\x1c\u00a0 unicode café 日本 \u3000</s>",
        "<s></s>",
        "</s><s>car<loc_52><loc_0><loc_999><loc_620>person" + L(8) + "</s>",
        "</s><s>car" + L(4) + "car" + L(4) + "dog" + L(6) + "cat" + L(3) + "</s>",
        "<loc_1><loc_2><loc_3><loc_4><loc_5>",
        "<loc_0><loc_0><loc_0><loc_0><loc_999><loc_999><loc_999><loc_999>",
        "red car\n" + L(4) + "blue\ncar" + L(4) + "\n green car" + L(4),
        "café" + L(4) + "日本" + L(4) + " naïve  résumé " + L(4),
        "<od>car</od>" + L(4) + "<ground>person<obj>" + L(4) + "a<box>b" + L(4) + "x<bbox>" + L(4),
        "big<loc_1500><loc_0001><loc_12345><loc_7>",
        "a<b" + L(4) + "<loc_>x" + L(4) + "<loc_1" + L(4),
        "<pad>pad<pad>" + L(4) + "<s>s</s>" + L(4),
        "it" + L(4) + "the image" + L(4) + "A" + L(4) + " a " + L(4) + "a red car" + L(8) + "its" + L(4),
        "each other" + L(4) + "one another" + L(4) + " The" + L(4) + "the" + L(4),
        L(4) + L(4) + L(4),
        "text only, no boxes",
        L(8) + "<sep>" + L(6) + "<sep>" + L(5),
        "person" + L(10) + "<sep>" + L(4),
        "<poly>" + L(8) + "</poly><poly>" + L(6) + "<sep>" + L(4) + "</poly>",
        "dog<poly>" + L(8) + "</poly>cat<poly>" + L(7) + "</poly>",
        "<sep><sep><sep><sep>",
        "<poly><sep></poly><poly>",
        L(3) + "<poly>" + L(2) + "</poly>",
        "seg " + L(6) + "<poly>" + L(4),
        "a\n<poly>" + L(4) + "\n</poly>" + L(4),
        "<s>HELLO" + L(8) + "WORLD" + L(8) + "</s>",
        "tiny<loc_0><loc_0><loc_1><loc_0><loc_1><loc_1><loc_0><loc_1>big"
        "<loc_0><loc_0><loc_999><loc_0><loc_999><loc_999><loc_0><loc_999>",
        "line\nbreak" + L(8) + "\n" + L(8) + "x\n" + L(9),
        "  spaced  " + L(8) + "é" + L(8),
        "<loc_100><loc_100><loc_200><loc_100><loc_200><loc_200><loc_100><loc_200>"
        "<loc_100><loc_100><loc_110><loc_100><loc_110><loc_110><loc_100><loc_110>",
        "<loc_500><loc_500><loc_400><loc_600><loc_600><loc_400><loc_300><loc_300>",
        L(7),
        # Python's \\d takes any Unicode decimal digit, and int() reads it.
        "arabic<loc_\u0663\u0664><loc_\u0661><loc_\uff19\uff19><loc_1\u0968>"
        "<loc_\U0001d7d9><loc_\u0e52><loc_\u07c3><loc_\u0665>",
        "\u00b2<loc_\u00b2><loc_1><loc_2><loc_3><loc_4>",
    ]


def random_text(rng):
    pool = (
        ["car", " a red car", "person", "dog ", "日本", "café", "it", "the image", "a", "A", " ", "  ", "\n", "\t",
         "<s>", "</s>", "<pad>", "<od>", "</od>", "<ground>", "<obj>", "<poly>", "</poly>", "<sep>", "<box>",
         "<loc_", ">", "<", "loc_5>", "\u00a0", "\x1c", "x"]
        + ["LOC"] * 30
    )
    parts = []
    for _ in range(rng.randrange(1, 50)):
        p = rng.choice(pool)
        if p == "LOC":
            p = loc(rng) if rng.random() < 0.97 else f"<loc_{rng.randrange(1000, 99999)}>"
        parts.append(p)
    return "".join(parts)


def main():
    rng = random.Random(1234)
    procs = {"original": processor(0.01), "no_area_threshold": processor(0.0)}
    configs = {
        "original": {"ocr_area_threshold": 0.01, "banned_grounding_tokens": BANNED},
        "no_area_threshold": {"ocr_area_threshold": 0.0, "banned_grounding_tokens": BANNED},
    }

    texts = crafted(rng)
    random_texts = [random_text(rng) for _ in range(150)]
    cases = []
    for task in TASKS:
        for i, text in enumerate(texts + random_texts):
            size = SIZES[i % len(SIZES)] if i < len(texts) else (rng.randrange(1, 5000), rng.randrange(1, 5000))
            for name, proc in procs.items():
                if name != "original" and task != "<OCR_WITH_REGION>":
                    continue
                expected = proc.post_process_generation(text, task=task, image_size=size)
                cases.append({"task": task, "text": text, "image_size": list(size), "config": name,
                              "expected": expected})

    prompt_inputs = [t for t in TASKS] + [
        "<CAPTION_TO_PHRASE_GROUNDING>A green car parked in front of a yellow building.",
        "<CAPTION_TO_PHRASE_GROUNDING>  spaced \n",
        "<CAPTION_TO_PHRASE_GROUNDING>x<CAPTION_TO_PHRASE_GROUNDING>y",
        "before <REFERRING_EXPRESSION_SEGMENTATION> after",
        "<REGION_TO_SEGMENTATION><loc_1><loc_2><loc_3><loc_4>",
        "<OPEN_VOCABULARY_DETECTION>a {brace} café",
        "<REGION_TO_CATEGORY><loc_52><loc_0><loc_999><loc_620>",
        "<REGION_TO_DESCRIPTION>\u00a0<loc_1><loc_2><loc_3><loc_4>\u3000",
        "<REGION_TO_OCR><loc_1><loc_2><loc_3><loc_4>",
        "<OD>extra",
        " <OD>",
        "<OD><OD>",
        "<CAPTION_TO_PHRASE_GROUNDING><OD>",
        "<OCR_WITH_REGION>",
        "plain text prompt",
        "",
    ]
    prompts = []
    proc = procs["original"]
    for p in prompt_inputs:
        try:
            prompts.append({"input": p, "expected": proc._construct_prompts(p)[0]})
        except ValueError:
            prompts.append({"input": p, "expected": None})

    reference = {
        "versions": {"transformers": transformers.__version__},
        "configs": configs,
        "prompts": prompts,
        "cases": cases,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "reference.json", "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=True)
    print(f"wrote {OUT / 'reference.json'}: {len(cases)} post-processing cases, {len(prompts)} prompts")


if __name__ == "__main__":
    sys.exit(main())
