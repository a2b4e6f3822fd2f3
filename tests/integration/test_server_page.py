"""The results page at GET /, in headless Chromium (Debian's package) against a real server.

A YOLOv5n server with an API key: the page is served without the key with its content types and a strict
Content-Security-Policy; in the browser it asks for the key (the 401 of /v1/models tells it), lists the
model, sends a real photo to /detect and draws the answer. What it shows is compared with /detect's own
JSON for the same photo, asked separately: every label, score and box in the table and the overlay, the
timings, and one screenshot read for content: the boxes' edges have the box colour where the JSON puts
them and points well inside and outside do not. A file that is not an image shows the server's error; an
image dropped on the page is sent as a chosen one is.
The same server also holds Florence-2 (the tiny checkpoint of the florence2_fixtures setup): the page
shows its tasks, a text field for those that take text, a caption, and boxes, polygons and OCR quad
boxes as /detect returns them.
"""

import html.parser
import io
import json
import os
import sys
import unittest
from pathlib import Path

import numpy as np
from PIL import Image

from chromium_devtools import Chromium
from server_harness import ASSETS, IMAGES, ROOT, TMP, Server, run_tests

API_KEY = "page-test-key"
WEB = ROOT / "server" / "web"
FLORENCE_DATA = Path(os.environ.get("VLM_TEST_DATA", ROOT / "build" / "test-data")) / "florence2"
FLORENCE = FLORENCE_DATA / "tasks_native"
PHOTO = IMAGES / "zidane.jpg"
# Screenshot tolerances: a pixel "has" a colour when every channel is within COLOUR_TOLERANCE (antialiasing
# and JPEG-coloured neighbours); an edge point counts when such a pixel lies within EDGE_SLACK_PX of where
# the JSON puts the edge (rounding of the scaled image). Points INSET_PX inside or outside a box must not.
COLOUR_TOLERANCE = 60
EDGE_SLACK_PX = 1
INSET_PX = 10
MIN_EDGE_MATCH = 0.8
MAX_AWAY_MATCH = 0.1

SERVER = None
BROWSER = None


def setUpModule():
    global SERVER, BROWSER
    # One server for every case; --batch-max 1 keeps start-up to one warm-up pass per model.
    florence = ["--model", f"florence={FLORENCE}"] if (FLORENCE / "config.json").exists() else []
    SERVER = Server("--api-key", API_KEY, "--batch-max", "1", *florence, api_key=API_KEY)
    BROWSER = Chromium(width=1280, height=1600)


def tearDownModule():
    if BROWSER:
        BROWSER.close()
    if SERVER:
        SERVER.stop()


class ScriptAndStyleFinder(html.parser.HTMLParser):
    """Inline script or style anywhere in index.html (the CSP would block it)."""

    def __init__(self):
        super().__init__()
        self.inline = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and "src" not in attrs:
            self.inline.append("a <script> without src")
        if tag == "style":
            self.inline.append("a <style> element")
        self.inline += [f"{name}= on <{tag}>" for name in attrs if name == "style" or name.startswith("on")]


class Served(unittest.TestCase):
    def test_page_files_are_public_with_types_and_a_strict_policy(self):
        for path, name, content_type in (("/", "index.html", "text/html; charset=utf-8"),
                                         ("/app.css", "app.css", "text/css; charset=utf-8"),
                                         ("/app.js", "app.js", "text/javascript; charset=utf-8")):
            r = SERVER.get(path, auth=False)
            self.assertEqual(r.status_code, 200, path)
            self.assertEqual(r.headers["Content-Type"], content_type, path)
            self.assertEqual(r.content, (WEB / name).read_bytes(), f"{path} is not server/web/{name} as built")
            self.assertEqual(r.headers["X-Content-Type-Options"], "nosniff", path)
            policy = dict(p.strip().split(" ", 1) for p in r.headers["Content-Security-Policy"].split(";"))
            self.assertEqual(policy["default-src"], "'none'")
            self.assertEqual((policy["script-src"], policy["style-src"], policy["connect-src"]),
                             ("'self'", "'self'", "'self'"))
            self.assertNotIn("unsafe", r.headers["Content-Security-Policy"])
        self.assertEqual(SERVER.get("/v1/models", auth=False).status_code, 401)  # the API itself still needs the key
        self.assertEqual(SERVER.get("/missing.js", auth=False).json()["error"]["code"], "not_found")

    def test_page_has_no_inline_script_or_style(self):
        finder = ScriptAndStyleFinder()
        finder.feed((WEB / "index.html").read_text())
        self.assertEqual(finder.inline, [])
        self.assertNotIn("http://", (WEB / "index.html").read_text().replace("http://www.w3.org/2000/svg", ""))
        for name in ("app.js", "app.css"):
            self.assertNotRegex((WEB / name).read_text(), r"https?://(?!www\.w3\.org/2000/svg)", name)


def shapes_on_page():
    return BROWSER.evaluate("""[...document.querySelectorAll('#overlay .shape')].map((s) => ({
        kind: s.dataset.kind, label: s.dataset.label, score: s.dataset.score ?? null, stroke: s.getAttribute('stroke'),
        x: s.getAttribute('x'), y: s.getAttribute('y'), width: s.getAttribute('width'), height: s.getAttribute('height'),
        points: s.getAttribute('points')}))""")


def table_rows():
    return BROWSER.evaluate("[...document.querySelectorAll('#detections tbody tr')]"
                            ".map((r) => [...r.cells].map((c) => c.textContent))")


def tags_on_page():
    return BROWSER.evaluate("[...document.querySelectorAll('#overlay .tag text')].map((t) => t.textContent)")


def send_from_page(photo, timeout=60):
    BROWSER.evaluate("document.body.dataset.state = 'ready'")
    BROWSER.set_files("#image", [photo])
    BROWSER.wait_for("!document.getElementById('send').disabled")
    BROWSER.evaluate("document.getElementById('send').click()")
    return BROWSER.wait_for("['done', 'error'].includes(document.body.dataset.state) && document.body.dataset.state",
                            timeout)


def choose(select_id, value):
    BROWSER.evaluate(f"(() => {{ const s = document.getElementById('{select_id}'); s.value = {value!r};"
                     " s.dispatchEvent(new Event('change')); return s.value; })()")


def enter_api_key():
    BROWSER.wait_for("!document.getElementById('api-key-row').hidden")
    BROWSER.evaluate(f"document.getElementById('api-key').value = {API_KEY!r}")
    BROWSER.evaluate("document.getElementById('use-key').click()")
    BROWSER.wait_for("document.getElementById('model').options.length > 0")


def colour(hex_colour):
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])


class InBrowser(unittest.TestCase):
    """One page, in order: the key, the model, a photo, its answer, the screenshot, then a bad file."""

    @classmethod
    def setUpClass(cls):
        BROWSER.open(SERVER.base + "/")

    def test_1_asks_for_the_api_key_then_lists_the_models(self):
        BROWSER.wait_for("!document.getElementById('api-key-row').hidden")
        self.assertIn("401 unauthorized", BROWSER.wait_for("document.getElementById('error').textContent"))
        self.assertEqual(BROWSER.evaluate("document.getElementById('model').options.length"), 0)
        enter_api_key()
        self.assertEqual(BROWSER.evaluate("document.getElementById('model').value"), "yolo")
        self.assertTrue(BROWSER.evaluate("document.getElementById('error').hidden"))
        self.assertTrue(BROWSER.evaluate("document.getElementById('task-row').hidden"), "YOLO takes no task")
        self.assertIn("ready", BROWSER.evaluate("document.getElementById('server-status').textContent"))

    def test_2_draws_what_detect_answers(self):
        self.assertEqual(send_from_page(PHOTO), "done", BROWSER.evaluate("document.getElementById('error').textContent"))
        want = SERVER.post("/detect", files={"image": (PHOTO.name, PHOTO.read_bytes())}, data={"model": "yolo"}).json()
        self.assertGreaterEqual(len(want["detections"]), 2, "the photo must give boxes to compare")
        detections = want["detections"]
        self.assertEqual(table_rows(), [["box", d["label"], f"{d['score']:.4f}", ", ".join(f"{v:.1f}" for v in d["box"])]
                                        for d in detections])
        self.assertEqual(tags_on_page(), [f"{d['label']} {d['score']:.2f}" for d in detections])
        shapes = shapes_on_page()
        self.assertEqual(len(shapes), len(detections))
        for shape, d in zip(shapes, detections):
            x1, y1, x2, y2 = d["box"]
            self.assertEqual((shape["kind"], shape["label"]), ("box", d["label"]))
            self.assertAlmostEqual(float(shape["score"]), d["score"], places=5)
            got = [float(shape[k]) for k in ("x", "y", "width", "height")]
            for g, w in zip(got, [x1, y1, x2 - x1, y2 - y1]):
                self.assertAlmostEqual(g, w, places=3, msg=f"{d['label']} box on the page")
        timings = BROWSER.evaluate("Object.fromEntries([...document.querySelectorAll('#timings dd')]"
                                   ".map((d) => [d.dataset.key, d.textContent]))")
        for key in ("preprocess_ms", "inference_ms", "postprocess_ms"):
            self.assertRegex(timings[f"image.{key}"], r"^\d+\.\d ms$")
        self.assertTrue(any(k.startswith("request.") for k in timings), timings)
        self.check_screenshot(want, shapes)
        self.assertEqual(self.unexpected_problems(), [])

    def check_screenshot(self, record, shapes):
        rect = BROWSER.evaluate("(() => { const r = document.getElementById('photo').getBoundingClientRect();"
                                " return {x: r.left, y: r.top, width: r.width, height: r.height,"
                                " scrolled: window.scrollY, viewport: window.innerHeight}; })()")
        self.assertEqual(rect["scrolled"], 0)
        self.assertLessEqual(rect["y"] + rect["height"], rect["viewport"], "the photo must be in view")
        pad = 8
        clip = {"x": rect["x"] - pad, "y": rect["y"] - pad, "width": rect["width"] + 2 * pad,
                "height": rect["height"] + 2 * pad}
        png = BROWSER.screenshot(clip)
        (TMP / "page.png").write_bytes(png)
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        scale = rect["width"] / record["width"]
        self.assertAlmostEqual(rect["height"] / record["height"], scale, delta=0.01)

        def has_colour(x, y, want, slack=0):
            px, py = round(pad + x * scale), round(pad + y * scale)
            window = pixels[max(0, py - slack):py + slack + 1, max(0, px - slack):px + slack + 1]
            return bool((np.abs(window - want).max(axis=-1) <= COLOUR_TOLERANCE).any())

        for d, shape in zip(record["detections"], shapes):
            x1, y1, x2, y2 = d["box"]
            want = colour(shape["stroke"])
            ts = np.linspace(0.1, 0.9, 20)
            edge = [(x1 + t * (x2 - x1), y) for t in ts for y in (y1, y2)] + \
                   [(x, y1 + t * (y2 - y1)) for t in ts for x in (x1, x2)]
            on_edge = np.mean([has_colour(x, y, want, EDGE_SLACK_PX) for x, y in edge])
            self.assertGreaterEqual(on_edge, MIN_EDGE_MATCH, f"{d['label']} {d['box']}: edges drawn in {shape['stroke']}")
            inset = INSET_PX / scale
            away = []
            for offset in (inset, -inset):  # well inside, then well outside
                bx1, by1, bx2, by2 = x1 + offset, y1 + offset, x2 - offset, y2 - offset
                away += [(bx1 + t * (bx2 - bx1), y) for t in ts for y in (by1, by2)]
                away += [(x, by1 + t * (by2 - by1)) for t in ts for x in (bx1, bx2)]
            away = [(x, y) for x, y in away if 0 <= x < record["width"] and 0 <= y < record["height"]]
            off_edge = np.mean([has_colour(x, y, want) for x, y in away])
            self.assertLessEqual(off_edge, MAX_AWAY_MATCH, f"{d['label']} {d['box']}: colour away from the edges")

    def test_3_shows_the_error_the_server_answers(self):
        not_an_image = TMP / "notes.txt"
        not_an_image.write_text("these are not pixels\n")
        self.assertEqual(send_from_page(not_an_image), "error")
        want = SERVER.post("/detect", files={"image": ("notes.txt", not_an_image.read_bytes())}, data={"model": "yolo"})
        self.assertGreaterEqual(want.status_code, 400)
        error = want.json()["error"]
        shown = BROWSER.evaluate("document.getElementById('error').textContent")
        self.assertTrue(shown.startswith(f"{want.status_code} {error['code']}: {error['message']} (request "), shown)
        self.assertEqual(BROWSER.evaluate("document.getElementById('error').getAttribute('role')"), "alert")

    def test_4_a_dropped_image_is_sent(self):
        photo = IMAGES / "dog.jpg"
        BROWSER.evaluate("document.body.dataset.state = 'ready'")
        BROWSER.drop_files("#drop-zone", [photo])
        self.assertEqual(BROWSER.wait_for("document.getElementById('image').files[0]?.name"), photo.name)
        BROWSER.evaluate("document.getElementById('send').click()")
        self.assertEqual(BROWSER.wait_for("['done', 'error'].includes(document.body.dataset.state)"
                                          " && document.body.dataset.state", 60), "done")
        want = SERVER.post("/detect", files={"image": (photo.name, photo.read_bytes())}, data={"model": "yolo"}).json()
        self.assertTrue(want["detections"])
        self.assertEqual([row[1:3] for row in table_rows()], [[d["label"], f"{d['score']:.4f}"] for d in want["detections"]])
        self.assertIn(f"{want['width']}×{want['height']} pixels", BROWSER.evaluate("document.getElementById('summary').textContent"))

    def unexpected_problems(self):
        # The 401 that asks for the key is expected; anything else (a CSP refusal, an exception) is not.
        BROWSER.pump(0.2)
        return [p for p in BROWSER.problems() if "status of 401" not in p]


@unittest.skipUnless((FLORENCE / "config.json").exists(), f"no tiny Florence-2 checkpoint at {FLORENCE}")
class Florence2InBrowser(unittest.TestCase):
    """Florence-2 on the page: tasks, the text field, a caption, boxes with text, polygons, OCR quads."""

    @classmethod
    def setUpClass(cls):
        BROWSER.open(SERVER.base + "/")
        enter_api_key()
        choose("model", "florence")

    def run_task(self, task, text=None, photo=IMAGES / "bus.jpg"):
        choose("task", task)
        needs_text = not BROWSER.evaluate("document.getElementById('text-row').hidden")
        self.assertEqual(needs_text, text is not None, f"{task}: text field shown")
        if text is not None:
            BROWSER.evaluate(f"document.getElementById('text').value = {text!r}")
        self.assertEqual(send_from_page(photo), "done", BROWSER.evaluate("document.getElementById('error').textContent"))
        data = {"model": "florence", "task": task, **({"text": text} if text is not None else {})}
        r = SERVER.post("/detect", files={"image": (photo.name, photo.read_bytes())}, data=data)
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()

    def test_text_field_follows_the_task(self):
        models = {m["name"]: m for m in SERVER.get("/v1/models").json()["data"]}
        tasks = BROWSER.evaluate("[...document.getElementById('task').options].map((o) => o.value)")
        self.assertEqual(tasks, models["florence"]["tasks"])
        for task in tasks:
            choose("task", task)
            shown = not BROWSER.evaluate("document.getElementById('text-row').hidden")
            self.assertEqual(shown, task in models["florence"]["text_tasks"], task)

    def test_caption_is_shown_as_text(self):
        want = self.run_task("<CAPTION>")
        self.assertIsInstance(want["result"], str)
        self.assertTrue(BROWSER.evaluate("!document.getElementById('answer-text').hidden"))
        self.assertEqual(BROWSER.evaluate("document.getElementById('answer-text').textContent"), want["result"])

    def test_shapes_are_drawn_as_detect_answers(self):
        # A photo and text per task for which the tiny checkpoint's reference answer (florence2_fixtures) has
        # shapes, so that there is something to compare.
        refs = json.loads((FLORENCE_DATA / "tasks_refs.json").read_text())["cases"]
        for task, key in (("<CAPTION_TO_PHRASE_GROUNDING>", "bboxes"), ("<REFERRING_EXPRESSION_SEGMENTATION>", "polygons"),
                          ("<OCR_WITH_REGION>", "quad_boxes")):
            case = next(c for c in refs if c["task"] == task and c["answer"].get(key))
            want = self.run_task(task, case["text"] or None, ASSETS / case["image"])
            result = want["result"]
            self.assertTrue(result.get(key), f"{task}: /detect gave no {key} where transformers did")
            expected = [("box", d["label"], d["score"] if want["scores"] is not None else None, None)
                        for d in want["detections"]]
            expected += [("polygon", (result.get("polygons_labels") or result.get("labels"))[i], None, part)
                         for i, parts in enumerate(result.get("polygons", [])) for part in parts]
            expected += [("quad", result["labels"][i], None, quad) for i, quad in enumerate(result.get("quad_boxes", []))]
            shapes = shapes_on_page()
            self.assertEqual([(s["kind"], s["label"]) for s in shapes], [(k, label) for k, label, _, _ in expected], task)
            rows = table_rows()
            for shape, row, (kind, _, score, points) in zip(shapes, rows, expected):
                self.assertEqual(row[2], "–" if score is None else f"{score:.4f}", task)
                if points is None:
                    continue
                got = [float(v) for pair in shape["points"].split() for v in pair.split(",")]
                self.assertEqual(len(got), len(points), task)
                for g, w in zip(got, points):
                    self.assertAlmostEqual(g, w, places=3, msg=task)

if __name__ == "__main__":
    sys.exit(run_tests())
