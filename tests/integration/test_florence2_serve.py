"""Florence-2 end to end: every task through `vlmserve detect` and through POST /detect of one server
that serves Florence-2 and YOLOv5n side by side must give transformers' answer for the same photo.

The reference (tasks_refs.json, from the florence2_fixtures setup, tests/parity/florence2_task_refs.py)
is transformers' Florence2Processor -> generate -> batch_decode -> post_process_generation, one photo
at a time, on a tiny checkpoint taught to answer in each task's format. Compared: the post-processed
answer (`result`; numbers within TOLERANCE_PX, strings exactly), the generated ids and the
`detections` vlmserve derives from box answers. Also: bad Florence-2 requests get the one error
shape and the right status, /v1/models lists both models, every response fits server/openapi.json.
"""

import base64
import json
import math
import os
import re
import subprocess
import sys
import unittest
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from server_harness import ASSETS, BIN, MODEL, OpenApi, Server, image_bytes, run_tests

DATA = Path(os.environ.get("VLM_TEST_DATA", Path(__file__).resolve().parents[2] / "build" / "test-data")) / "florence2"
NATIVE = DATA / "tasks_native"
ORIGINAL = DATA / "tasks_original"
# transformers returns whole pixels; vlmserve's JSON must carry the same numbers, whatever their spelling.
TOLERANCE_PX = 1e-3

REFS = None
SERVER = None
SPEC = None


def setUpModule():
    global REFS, SERVER, SPEC
    path = DATA / "tasks_refs.json"
    if not path.exists():
        sys.exit(f"missing {path}: run the florence2_fixtures test setup (tests/parity/florence2_make_fixtures.py)")
    REFS = json.loads(path.read_text())
    SPEC = OpenApi()
    SERVER = Server("--model", f"florence={NATIVE}")


def tearDownModule():
    if SERVER:
        SERVER.stop()


def cases_by_task():
    grouped = {}
    for case in REFS["cases"]:
        grouped.setdefault((case["task"], case["text"]), []).append(case)
    return grouped


def task_params(case):
    params = {"model": "florence", "task": case["task"]}
    if case["text"]:
        params["text"] = case["text"]
    return params


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("VLM_")}


def cli_detect(*args):
    return subprocess.run([BIN, "detect", *map(str, args)], capture_output=True, text=True, timeout=300, env=clean_env())


# Region scores (README "Florence-2 scores"): exp of the mean log-probability, under the scores the
# search chose each token by, of the region's label tokens and <loc_*> tokens. The reference below
# finds those tokens in token space, independently of vlmserve's text offsets, and takes each
# token's log-probability from transformers' compute_transition_scores (tasks_refs.json). Compared
# as mean log-probabilities within this.
SCORE_TOLERANCE = 1e-4
LABELLED = {"<OD>", "<DENSE_REGION_CAPTION>", "<CAPTION_TO_PHRASE_GROUNDING>", "<OPEN_VOCABULARY_DETECTION>"}
SEQUENCE_TOKENS = {"<s>", "</s>", "<pad>"}
POLYGON_TOKENS = {"<poly>", "</poly>", "<sep>"}
LOC = re.compile(r"^<loc_(\d+)>$")
ADDED = re.compile(r"^<[^<>]+>$")


def dequantize(bins, size):
    # transformers' float32 (bin + 0.5) * size / 1000, truncated; x and y alternate.
    return [int(np.float32(b + 0.5) * np.float32(size[k % 2] / 1000)) for k, b in enumerate(bins)]


def candidate_regions(case, tokenizer):
    """(label token indices, loc token indices, coordinates) for every region the answer's grammar
    allows, in order; the post-processor keeps some of them."""
    tokens = [tokenizer.id_to_token(i) for i in case["generated_ids"]]
    kept = [i for i, t in enumerate(tokens) if t not in SEQUENCE_TOKENS]
    locs = {i: int(LOC.match(tokens[i]).group(1)) for i in kept if LOC.match(tokens[i])}
    task, size = case["task"], case["size"]
    out = []
    n = 0
    if task == "<OCR_WITH_REGION>":
        content = []
        while n < len(kept):
            run = kept[n:n + 8]
            if content and len(run) == 8 and all(i in locs for i in run):
                out.append((content, run, dequantize([locs[i] for i in run], size)))
                content, n = [], n + 8
            else:
                content.append(kept[n])
                n += 1
        return out
    polygons = task in ("<REFERRING_EXPRESSION_SEGMENTATION>", "<REGION_TO_SEGMENTATION>") or any(
        tokens[i] == "<poly>" for i in kept)
    label = []
    while n < len(kept):
        i = kept[n]
        if i not in locs and tokens[i] not in POLYGON_TOKENS:
            label = label + [i] if not ADDED.match(tokens[i]) else []
            n += 1
            continue
        run = []
        while n < len(kept) and (kept[n] in locs or (polygons and tokens[kept[n]] in POLYGON_TOKENS)):
            run.append(kept[n])
            n += 1
        words = label if task in LABELLED else []
        if polygons:
            has_poly = any(tokens[j] == "<poly>" for j in run)
            groups, group, inside = [], [], not has_poly
            for j in run:
                if tokens[j] == "<poly>":
                    inside, group = True, []
                elif tokens[j] == "</poly>":
                    groups.append(group)
                    inside, group = False, []
                elif inside:
                    group.append(j)
            if not has_poly:
                groups = [group]
            for group in groups:
                loc_tokens = [j for j in group if j in locs]
                parts, part = [], []
                for j in group:
                    if tokens[j] == "<sep>":
                        parts.append(part)
                        part = []
                    elif j in locs:
                        part.append(locs[j])
                parts.append(part)
                coords = [dequantize(p[:len(p) // 2 * 2], size) for p in parts if p]
                out.append((words, loc_tokens, coords))
        else:
            for k in range(0, len(run) - 3, 4):
                group = run[k:k + 4]
                out.append((words, group, dequantize([locs[j] for j in group], size)))
        label = []
    return out


def answer_regions(answer):
    if not isinstance(answer, dict):
        return []
    return answer.get("bboxes", []) + answer.get("polygons", []) + answer.get("quad_boxes", [])


def reference_scores(case, tokenizer):
    """The answer's regions' scores, or None for a pure text answer."""
    regions = answer_regions(case["answer"])
    if not isinstance(case["answer"], dict):
        return None
    log_probs = [0.0] + case["token_log_probs"]
    candidates = iter(candidate_regions(case, tokenizer))
    scores = []
    for region in regions:
        for words, loc_tokens, coords in candidates:
            if json.dumps(coords) == json.dumps(region):
                used = words + loc_tokens
                scores.append(math.exp(sum(log_probs[j] for j in used) / len(used)))
                break
        else:
            raise AssertionError(f"{case['task']} {case['image']}: no token region for {region}")
    return scores


class Compare:
    """Assertions shared by the CLI and server tests: one record against one reference case."""

    tokenizer = None

    def assert_scores(self, got, case, where):
        if Compare.tokenizer is None:
            Compare.tokenizer = Tokenizer.from_file(str(NATIVE / "tokenizer.json"))
        want = reference_scores(case, Compare.tokenizer)
        if want is None:
            self.assertIsNone(got, where)
            return
        self.assertIsInstance(got, list, where)
        self.assertEqual(len(got), len(want), f"{where}: scores {got} vs {want}")
        for g, w in zip(got, want):
            self.assertTrue(0 < g <= 1, f"{where}: score {g}")
            self.assertLessEqual(abs(math.log(g) - math.log(w)), SCORE_TOLERANCE, f"{where}: score {g} vs {w}")

    def assert_same_value(self, got, want, where):
        if isinstance(want, str) or want is None or isinstance(want, bool):
            self.assertEqual(got, want, where)
        elif isinstance(want, (int, float)):
            self.assertTrue(isinstance(got, (int, float)) and not isinstance(got, bool), f"{where}: {got!r}")
            self.assertLessEqual(abs(got - want), TOLERANCE_PX, f"{where}: {got} vs transformers {want}")
        elif isinstance(want, list):
            self.assertIsInstance(got, list, where)
            self.assertEqual(len(got), len(want), f"{where}: {got} vs transformers {want}")
            for i, (g, w) in enumerate(zip(got, want)):
                self.assert_same_value(g, w, f"{where}[{i}]")
        else:
            self.assertIsInstance(got, dict, where)
            self.assertEqual(sorted(got), sorted(want), where)
            for key in want:
                self.assert_same_value(got[key], want[key], f"{where}.{key}")

    def assert_matches_transformers(self, record, case):
        where = f"{case['task']} {case['image']}"
        self.assertNotIn("error", record, where)
        self.assertEqual([record["width"], record["height"]], case["size"], where)
        self.assertEqual(record["task"], case["task"], where)
        self.assertEqual(record["generated_ids"], case["generated_ids"], where)
        self.assert_same_value(record["result"], case["answer"], where + " result")
        self.assert_scores(record["scores"], case, where)
        answer = case["answer"]
        boxes = answer.get("bboxes", []) if isinstance(answer, dict) else []
        labels = answer.get("bboxes_labels", answer.get("labels", [])) if boxes else []
        self.assertEqual(len(record["detections"]), len(boxes), where)
        for k, (d, box, label) in enumerate(zip(record["detections"], boxes, labels)):
            self.assertEqual((d["label"], d["score"]), (label, record["scores"][k]), where)
            self.assert_same_value(d["box"], box, where + " detection box")


class References(unittest.TestCase):
    def test_references_exercise_every_task_and_answer_shape(self):
        # Guards against a fixture whose answers are all empty, which would make the comparisons vacuous.
        grouped = cases_by_task()
        self.assertEqual({task for task, _ in grouped}, set(REFS["tasks"]))
        for (task, _), cases in grouped.items():
            self.assertGreaterEqual(len({c["image"] for c in cases}), 2, task)
        answers = [c["answer"] for c in REFS["cases"]]
        for key in ("bboxes", "quad_boxes", "polygons", "labels", "bboxes_labels", "polygons_labels"):
            self.assertTrue(any(isinstance(a, dict) and a.get(key) for a in answers), f"no case has {key}")
        self.assertTrue(any(isinstance(a, str) and a for a in answers), "no case has a text answer")


class Cli(Compare, unittest.TestCase):
    def test_every_task_matches_transformers(self):
        # Each task's photos go as one batch; tasks alternate between the two checkpoint layouts.
        for n, ((task, text), cases) in enumerate(cases_by_task().items()):
            folder = NATIVE if n % 2 == 0 else ORIGINAL
            args = ["--model", f"florence2={folder}", "--task", task, *[ASSETS / c["image"] for c in cases]]
            if text:
                args += ["--text", text]
            proc = cli_detect(*args)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            records = [json.loads(line) for line in proc.stdout.splitlines()]
            self.assertEqual([r["path"] for r in records], [str(ASSETS / c["image"]) for c in cases])
            for record, case in zip(records, cases):
                self.assertEqual(record["model"], "florence2")
                self.assert_matches_transformers(record, case)

    def test_bad_task_options_are_usage_errors(self):
        photo = ASSETS / "images" / "bus.jpg"
        for args, message in (
            (["--model", f"florence2={NATIVE}", "--task", "<NOPE>"], "unknown Florence-2 task '<NOPE>'"),
            (["--model", f"florence2={NATIVE}", "--task", "<OPEN_VOCABULARY_DETECTION>"], "needs text"),
            (["--model", f"florence2={NATIVE}", "--task", "<CAPTION>", "--text", "a dog"], "takes no text"),
            (["--model", f"yolo={MODEL}", "--task", "<OD>"], "YOLO"),
        ):
            proc = cli_detect(*args, photo)
            self.assertEqual(proc.returncode, 2, (args, proc.stderr))
            self.assertIn(message, proc.stderr)
            self.assertEqual(proc.stdout, "", args)


class ServerAnswers(Compare, unittest.TestCase):
    def detect(self, case, form):
        """One photo, its parameters sent the three ways POST /detect takes them."""
        data = (ASSETS / case["image"]).read_bytes()
        params = task_params(case)
        if form == "multipart":
            r = SERVER.post("/detect", files={"image": ("photo.jpg", data, "image/jpeg")}, data=params)
        elif form == "json":
            r = SERVER.post("/detect", json={"image": base64.b64encode(data).decode(), **params})
        else:
            r = SERVER.post("/detect", data=data, headers={"Content-Type": "image/jpeg"}, params=params)
        SPEC.check("/detect", "POST", r)
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()

    def test_every_task_matches_transformers(self):
        forms = ("multipart", "json", "query")
        n = 0
        for cases in cases_by_task().values():
            for case in cases:
                body = self.detect(case, forms[n % len(forms)])
                n += 1
                self.assertEqual(body["model"], "florence")
                self.assert_matches_transformers(body, case)

    def test_a_batch_answers_as_each_photo_alone(self):
        # One forward pass for the request's photos: answers of different lengths share it, and each
        # must still be the photo's own answer (no padding of the shorter one).
        for cases in cases_by_task().values():
            files = [("image", (f"{i}.jpg", (ASSETS / c["image"]).read_bytes(), "image/jpeg")) for i, c in enumerate(cases)]
            r = SERVER.post("/detect", files=files, data=task_params(cases[0]))
            SPEC.check("/detect", "POST", r)
            self.assertEqual(r.status_code, 200, r.text)
            for record, case in zip(r.json()["results"], cases):
                self.assert_matches_transformers(record, case)

    def test_concurrent_requests_of_different_tasks(self):
        # Requests for different tasks are never batched together; each gets its own task's answer.
        picked = [cases[0] for cases in cases_by_task().values()]
        with ThreadPoolExecutor(max_workers=4) as pool:
            bodies = list(pool.map(lambda c: self.detect(c, "multipart"), picked))
        for body, case in zip(bodies, picked):
            self.assert_matches_transformers(body, case)

    def test_yolo_answers_beside_florence(self):
        r = SERVER.post("/detect", files={"image": ("bus.jpg", image_bytes("bus.jpg"), "image/jpeg")},
                        data={"model": "yolo"})
        SPEC.check("/detect", "POST", r)
        self.assertEqual(r.status_code, 200, r.text)
        body = r.json()
        self.assertEqual(body["model"], "yolo")
        self.assertIn("bus", [d["label"] for d in body["detections"]])
        self.assertNotIn("task", body)


def generation_controls():
    """The per-request generation settings of the parity fixture (florence2_make_fixtures.py CONTROLS)
    with transformers' ids for each photo, keeping only photos where each of transformers' own
    decisions had a clear margin (generation_margins.py), so that exact ids are a fair demand."""
    from safetensors import safe_open
    with safe_open(str(DATA / "tiny_refs.safetensors"), "pt") as refs:
        meta = refs.metadata()
        controls = json.loads(meta["controls"])
        images = json.loads(meta["images"])
        out = []
        for c, control in enumerate(controls):
            ids = refs.get_tensor(f"control{c}")
            margins = refs.get_tensor(f"control{c}.margin")
            for i, image in enumerate(images):
                if float(margins[i].min()) < 1e-4:
                    continue
                row = ids[i].tolist()
                while row and row[-1] == 1 and 2 in row:  # transformers pads a batch's shorter rows
                    row.pop()
                out.append((meta["controls_task"], control, image, row))
    return out


class GenerationSettings(unittest.TestCase):
    def test_per_request_settings_give_transformers_ids(self):
        # Each setting over HTTP changes the answer as generate(**kwargs) changes transformers'.
        cases = generation_controls()
        self.assertGreaterEqual(len({json.dumps(c) for _, c, _, _ in cases}), 3, "every setting must be checked")
        forms = ("multipart", "json", "query")
        for n, (task, control, image, want) in enumerate(cases):
            params = {"model": "florence", "task": task, **control}
            data = (ASSETS / image).read_bytes()
            if forms[n % 3] == "json":
                r = SERVER.post("/detect", json={"image": base64.b64encode(data).decode(), **params})
            elif forms[n % 3] == "multipart":
                r = SERVER.post("/detect", files={"image": ("p.jpg", data, "image/jpeg")},
                                data={k: json.dumps(v) if not isinstance(v, str) else v for k, v in params.items()})
            else:
                r = SERVER.post("/detect", data=data, headers={"Content-Type": "image/jpeg"},
                                params={k: json.dumps(v) if not isinstance(v, str) else v for k, v in params.items()})
            SPEC.check("/detect", "POST", r)
            self.assertEqual(r.status_code, 200, r.text)
            self.assertEqual(r.json()["generated_ids"], want, (control, image))

    def test_conf_keeps_the_regions_scoring_above_it(self):
        # Unset, conf filters nothing for Florence-2 (every other test sees all of transformers'
        # regions); set, it keeps the regions whose score is above it, as YOLO's does.
        tokenizer = Tokenizer.from_file(str(NATIVE / "tokenizer.json"))
        picked = None
        for case in REFS["cases"]:
            scores = reference_scores(case, tokenizer)
            if scores and len(set(scores)) >= 2:
                picked, ranked = case, sorted(set(scores))
                break
        self.assertIsNotNone(picked, "no reference case has two regions of different scores")
        conf = (ranked[0] + ranked[1]) / 2
        params = {**task_params(picked), "conf": repr(conf)}
        r = SERVER.post("/detect", files={"image": ("p.jpg", (ASSETS / picked["image"]).read_bytes())}, data=params)
        SPEC.check("/detect", "POST", r)
        self.assertEqual(r.status_code, 200, r.text)
        body = r.json()
        keep = [k for k, score in enumerate(reference_scores(picked, tokenizer)) if score > conf]
        self.assertEqual(len(body["scores"]), len(keep))
        self.assertTrue(all(score > conf for score in body["scores"]), body["scores"])
        answer = picked["answer"]
        regions = answer_regions(answer)
        offset = 0
        for key in ("bboxes", "polygons", "quad_boxes"):
            if key not in answer:
                continue
            want = [regions[k] for k in keep if offset <= k < offset + len(answer[key])]
            self.assertEqual(body["result"][key], want, key)
            offset += len(answer[key])
        boxes_kept = [k for k in keep if k < len(answer.get("bboxes", []))]
        self.assertEqual(len(body["detections"]), len(boxes_kept))

    def test_cli_flags_give_the_same_ids(self):
        task, control, image, want = generation_controls()[0]
        flags = []
        for name, value in control.items():
            flags += ["--" + name.replace("_", "-"), value if isinstance(value, str) else json.dumps(value)]
        p = cli_detect(ASSETS / image, "--model", NATIVE, "--task", task, *flags)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["generated_ids"], want, control)


class ServerErrors(unittest.TestCase):
    def expect_error(self, params, status, code, *fragments):
        r = SERVER.post("/detect", files={"image": ("bus.jpg", image_bytes("bus.jpg"), "image/jpeg")}, data=params)
        self.assertEqual(r.status_code, status, (params, r.text))
        SPEC.check("/detect", "POST", r)
        body = r.json()
        self.assertEqual(list(body), ["error"])
        self.assertEqual(sorted(body["error"]), ["code", "message", "request_id"])
        self.assertEqual(body["error"]["code"], code, body)
        self.assertEqual(body["error"]["request_id"], r.headers["X-Request-Id"])
        for fragment in fragments:
            self.assertIn(fragment, body["error"]["message"])
        return body["error"]["message"]

    def test_unknown_task(self):
        self.expect_error({"model": "florence", "task": "<NOPE>"}, 422, "invalid_argument", "<NOPE>", "<OD>")
        self.expect_error({"model": "florence", "task": "OD"}, 422, "invalid_argument", "unknown Florence-2 task")

    def test_task_and_text_that_are_not_utf8(self):
        # Form fields are bytes; the error message quotes them and must still be valid JSON (the
        # server used to terminate on these while writing the error).
        bus = ("bus.jpg", image_bytes("bus.jpg"), "image/jpeg")
        for fields in ({"model": (None, b"florence"), "task": (None, b"<OD\xff\xfe>")},
                       {"model": (None, b"yolo"), "task": (None, b"<\xc3>")},
                       {"model": (None, b"florence"), "task": (None, b"<CAPTION>"), "text": (None, b"\xff" * 100)},
                       {"model": (None, b"yolo"), "conf": (None, b"0.\xff")}):
            r = SERVER.post("/detect", files={"image": bus, **fields})
            self.assertEqual(r.status_code, 422, r.text)
            SPEC.check("/detect", "POST", r)
            self.assertEqual(r.json()["error"]["code"], "invalid_argument")

    def test_task_that_needs_text_without_it(self):
        # transformers would run "Locate  in the image." on nothing; vlmserve refuses instead.
        for task in ("<CAPTION_TO_PHRASE_GROUNDING>", "<REFERRING_EXPRESSION_SEGMENTATION>", "<REGION_TO_SEGMENTATION>",
                     "<OPEN_VOCABULARY_DETECTION>", "<REGION_TO_CATEGORY>", "<REGION_TO_DESCRIPTION>", "<REGION_TO_OCR>"):
            self.expect_error({"model": "florence", "task": task}, 422, "invalid_argument", task, "needs text")
        self.expect_error({"model": "florence", "task": "<OPEN_VOCABULARY_DETECTION>", "text": " \t\n"}, 422,
                          "invalid_argument", "needs text")

    def test_text_for_a_task_that_takes_none(self):
        # transformers raises ValueError ("should be the only content in the prompt") for these.
        self.expect_error({"model": "florence", "task": "<CAPTION>", "text": "a dog"}, 422, "invalid_argument",
                          "<CAPTION>", "takes no text")
        self.expect_error({"model": "florence", "text": "a dog"}, 422, "invalid_argument", "<OD>", "takes no text")
        self.expect_error({"model": "florence", "task": "<CAPTION_TO_PHRASE_GROUNDING>", "text": "a dog<OD>"}, 422,
                          "invalid_argument", "<OD>")

    def test_too_long_text(self):
        # The encoder has 1024 learned positions, 577 taken by the image: a longer prompt has nowhere to
        # go (transformers fails with an IndexError). The longest prompt that fits is served.
        tokenizer = Tokenizer.from_file(str(NATIVE / "tokenizer.json"))
        prefix = "Locate the phrases in the caption: "
        fixed = 2 + len(tokenizer.encode(prefix + "dog", add_special_tokens=False).ids)  # <s> ... </s>
        words = 1024 - 577 - fixed + 1
        text = "dog" + " dog" * (words - 1)
        self.assertEqual(2 + len(tokenizer.encode(prefix + text, add_special_tokens=False).ids), 1024 - 577)
        task = {"model": "florence", "task": "<CAPTION_TO_PHRASE_GROUNDING>"}
        r = SERVER.post("/detect", files={"image": ("bus.jpg", image_bytes("bus.jpg"))}, data={**task, "text": text})
        self.assertEqual(r.status_code, 200, r.text[:300])
        SPEC.check("/detect", "POST", r)
        message = self.expect_error({**task, "text": text + " dog"}, 422, "invalid_argument", "too long", "448", "447")
        self.assertNotIn("dog dog dog", message)
        self.expect_error({**task, "text": "dog " * 100000}, 422, "invalid_argument", "too long")

    def test_task_or_text_for_a_yolo_model(self):
        self.expect_error({"model": "yolo", "task": "<OD>"}, 422, "invalid_argument", "YOLO", "<OD>")
        self.expect_error({"task": "<OD>"}, 422, "invalid_argument", "YOLO")  # the default model is yolo
        self.expect_error({"model": "yolo", "text": "a dog"}, 422, "invalid_argument", "YOLO")

    def test_generation_settings_out_of_range(self):
        florence = {"model": "florence"}
        for name, value, fragment in (("num_beams", "0", "an integer in [1, 32]"),
                                      ("num_beams", "33", "an integer in [1, 32]"),
                                      ("num_beams", "2.5", "an integer in [1, 32]"),
                                      ("max_new_tokens", "0", "an integer in [1, 1000000]"),
                                      ("no_repeat_ngram_size", "-1", "an integer in [0, 1024]"),
                                      ("length_penalty", "nan", "a number in [-100, 100]"),
                                      ("length_penalty", "1e9", "a number in [-100, 100]"),
                                      ("early_stopping", "sometimes", "true, false or never")):
            self.expect_error({**florence, name: value}, 422, "invalid_argument", name + " must be " + fragment, value)
        # Above the server's --max-new-tokens-limit (1024 by default).
        self.expect_error({**florence, "max_new_tokens": "1025"}, 422, "invalid_argument",
                          "max_new_tokens must be at most 1024", "--max-new-tokens-limit", "1025")

    def test_generation_settings_for_a_yolo_model(self):
        for name, value in (("num_beams", "2"), ("max_new_tokens", "5"), ("no_repeat_ngram_size", "0"),
                            ("length_penalty", "1"), ("early_stopping", "never")):
            self.expect_error({"model": "yolo", name: value}, 422, "invalid_argument", "YOLO", name)

    def test_errors_leave_the_server_serving(self):
        self.expect_error({"model": "florence", "task": "<NOPE>"}, 422, "invalid_argument")
        case = REFS["cases"][0]
        r = SERVER.post("/detect", files={"image": ("p.jpg", (ASSETS / case["image"]).read_bytes())},
                        data=task_params(case))
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["generated_ids"], case["generated_ids"])


class Models(unittest.TestCase):
    def test_both_models_are_listed_with_their_tasks(self):
        r = SERVER.get("/v1/models")
        SPEC.check("/v1/models", "GET", r)
        models = {m["name"]: m for m in r.json()["data"]}
        self.assertEqual(sorted(models), ["florence", "yolo"])
        florence = models["florence"]
        self.assertEqual((florence["family"], florence["status"], florence["default"]), ("florence2", "ready", False))
        # The tasks transformers' Florence2Processor knows, no more and no fewer.
        self.assertEqual(sorted(florence["tasks"]), sorted(REFS["tasks"]))
        # The tasks that take text are those transformers' prompts fill with one ({input}), as the references use.
        self.assertEqual(sorted(florence["text_tasks"]), sorted({c["task"] for c in REFS["cases"] if c["text"]}))
        self.assertEqual(florence["classes"], [])
        self.assertEqual((florence["image_size"], florence["device"], florence["dtype"]), (768, "cpu", "float32"))
        yolo = models["yolo"]
        self.assertEqual((yolo["family"], yolo["default"], len(yolo["classes"])), ("yolo", True, 80))


if __name__ == "__main__":
    run_tests()
