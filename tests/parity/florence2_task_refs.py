"""Part of the florence2_fixtures test setup: a tiny checkpoint that answers every task in that task's
format, and transformers' end-to-end answers on it, for the CLI/server test
(tests/integration/test_florence2_serve.py).

The random tiny checkpoint answers every task and photo with the same loc-free words, so its
post-processed answers are all empty lists and would prove nothing about boxes, polygons or OCR
quads. A copy of it is taught for TEACH_STEPS steps (language model only; the vision tower and the
projector stay as they are) to answer each task with made-up labels and <loc_N> runs in that
task's shape. Whatever it then generates is the reference: transformers' Florence2Processor
(prompt, image processor) -> generate -> batch_decode -> post_process_generation, one photo at a time.

The processor gets the post-processor configuration of Microsoft's original checkpoints (OCR area
threshold 0.01, the phrase-grounding banned list), which is the one vlmserve applies.
"""
import json
import os
import random

import torch
from PIL import Image
from transformers import AutoImageProcessor

from florence2_text_reference import processor
from generation_margins import token_log_probs

PHOTOS_PER_TASK = 2
TEACH_STEPS = 150
WORDS = [" bus", "person", " dog", "a red car", "STOP", " two people", "horse", "giraffe"]
REGION = "<loc_52><loc_332><loc_932><loc_774>"
# (task, text, shape of the made-up answers it is taught): every task, and open-vocabulary detection
# twice so that both of its answer shapes (boxes, labelled polygons) come out.
SERVED = [
    ("<CAPTION>", "", "words"), ("<DETAILED_CAPTION>", "", "words"), ("<MORE_DETAILED_CAPTION>", "", "words"),
    ("<OD>", "", "boxes"), ("<DENSE_REGION_CAPTION>", "", "boxes"), ("<REGION_PROPOSAL>", "", "unlabelled_boxes"),
    ("<CAPTION_TO_PHRASE_GROUNDING>", "a bus and two people", "boxes"),
    ("<REFERRING_EXPRESSION_SEGMENTATION>", "the dog", "poly_polygons"),
    ("<REGION_TO_SEGMENTATION>", "<loc_100><loc_200><loc_500><loc_700>", "sep_polygons"),
    ("<OPEN_VOCABULARY_DETECTION>", "horse", "boxes"),
    ("<OPEN_VOCABULARY_DETECTION>", "a red car", "labelled_polygons"),
    ("<REGION_TO_CATEGORY>", REGION, "words"), ("<REGION_TO_DESCRIPTION>", REGION, "words"),
    ("<REGION_TO_OCR>", REGION, "words"), ("<OCR>", "", "words"), ("<OCR_WITH_REGION>", "", "ocr"),
]


def cases(photo_count):
    """(task, text, photo index): each SERVED entry on PHOTOS_PER_TASK photos, rotating over all photos."""
    out = []
    for t, (task, text, _) in enumerate(SERVED):
        for k in range(PHOTOS_PER_TASK):
            out.append((task, text, (t + k * photo_count // PHOTOS_PER_TASK) % photo_count))
    return out


def made_up_answer(shape, rng):
    def locs(n):
        return "".join(f"<loc_{rng.randrange(1000)}>" for _ in range(n))

    def quad(low, high):  # clockwise from the top left, corners in [low, high) bins
        x0, x1 = sorted(rng.sample(range(low, high), 2))
        y0, y1 = sorted(rng.sample(range(low, high), 2))
        return "".join(f"<loc_{v}>" for v in (x0, y0, x1, y0, x1, y1, x0, y1))

    return {
        "words": lambda: " ".join(rng.choice(WORDS).strip() for _ in range(4)),
        "boxes": lambda: rng.choice(WORDS) + locs(4) + rng.choice(WORDS) + locs(4),
        "unlabelled_boxes": lambda: locs(12),
        "poly_polygons": lambda: "<poly>" + locs(8) + "</poly>",
        "sep_polygons": lambda: locs(6) + "<sep>" + locs(6),
        "labelled_polygons": lambda: rng.choice(WORDS) + "<poly>" + locs(6) + "</poly>",
        # One line over the OCR area threshold (1% of the image), one under it (dropped); 18 tokens fit.
        "ocr": lambda: rng.choice([" dog", " bus"]) + quad(0, 1000) + rng.choice([" dog", " bus"]) + quad(500, 520),
    }[shape]()


def teach_task_formats(model, image_features, case_list, prompt_ids, tokenizer, image_token_id, max_new_tokens):
    """Teacher-forced steps on made-up answers. image_features: [photos, tokens, d] from this model.
    One photo per prompt is enough: the answer's shape follows the prompt."""
    rng = random.Random(7)
    shapes = {(task, text): shape for task, text, shape in SERVED}
    case_list = list({(task, text): (task, text, photo) for task, text, photo in reversed(case_list)}.values())
    prompts = [prompt_ids(task, text) for task, text, _ in case_list]
    targets = [[0] + tokenizer.encode(made_up_answer(shapes[task, text], rng), add_special_tokens=False).ids + [2]
               for task, text, _ in case_list]
    targets = [t[:max_new_tokens] for t in targets]
    image_tokens = image_features.shape[1]
    n, width, length = len(case_list), max(map(len, prompts)), max(map(len, targets))
    input_ids = torch.full((n, image_tokens + width), 1)
    attention = torch.zeros_like(input_ids)
    decoder_ids = torch.full((n, length), 1)
    labels = torch.full((n, length), -100)
    for i, (ids, target) in enumerate(zip(prompts, targets)):
        input_ids[i, :image_tokens] = image_token_id
        input_ids[i, image_tokens:image_tokens + len(ids)] = torch.tensor(ids)
        attention[i, :image_tokens + len(ids)] = 1
        decoder_ids[i, 0] = 2
        decoder_ids[i, 1:len(target)] = torch.tensor(target[:-1])
        labels[i, :len(target)] = torch.tensor(target)
    features = image_features[[photo for _, _, photo in case_list]]
    for p in list(model.model.vision_tower.parameters()) + list(model.model.multi_modal_projector.parameters()):
        p.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.eval()  # no dropout: fewer steps to a model that answers in format
    for _ in range(TEACH_STEPS):
        embeds = model.get_input_embeddings()(input_ids)
        embeds = embeds.masked_scatter((input_ids == image_token_id).unsqueeze(-1), features)
        logits = model(inputs_embeds=embeds, attention_mask=attention, decoder_input_ids=decoder_ids).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for p in model.parameters():
        p.requires_grad_(False)
    return loss.item()


def processor_for(checkpoint_dir):
    return processor(0.01, checkpoint_dir, AutoImageProcessor.from_pretrained(checkpoint_dir))


def write_task_refs(model, checkpoint_dir, paths, assets, case_list, generation, out_path, loss):
    """One image per generate() call, as transformers' model card runs it: in a batch, transformers pads
    shorter answers with <pad>, which batch_decode keeps and pure-text post-processing returns."""
    processor = processor_for(checkpoint_dir)
    records = []
    with torch.no_grad():
        for task, text, photo in case_list:
            image = Image.open(paths[photo]).convert("RGB")
            inputs = processor(text=task + text, images=image, return_tensors="pt")
            out = model.generate(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"], **generation,
                                 output_scores=True, return_dict_in_generate=True)
            generated = out.sequences
            log_probs = token_log_probs(model, out, generation.get("num_beams", 1))
            answer_text = processor.batch_decode(generated, skip_special_tokens=False)[0]
            answer = processor.post_process_generation(answer_text, task=task, image_size=image.size)
            records.append({"task": task, "text": text, "image": os.path.relpath(paths[photo], assets),
                            "size": list(image.size), "prompt_ids": inputs["input_ids"][0].tolist(),
                            "generated_ids": generated[0].tolist(), "token_log_probs": log_probs[0].tolist(),
                            "generated_text": answer_text, "answer": answer[task]})
    tasks = list(processor.tasks_answer_post_processing_type)
    with open(out_path, "w") as f:
        json.dump({"checkpoint": os.path.basename(checkpoint_dir), "tasks": tasks, "teach_loss": loss,
                   "generation": generation, "cases": records}, f, indent=1, ensure_ascii=False)
