"""POST /v1/chat/completions and GET /v1/models through the real `openai` Python client.

Answers are checked against POST /detect of the same server for the same image and task, and the
Florence-2 ones also against transformers' (tasks_refs.json from the florence2_fixtures setup: its
post-processed answers, generated ids and prompt ids). Every response is validated with the client's
own pydantic models (ChatCompletion, ChatCompletionChunk, Model: the client itself builds them
without validation) and against server/openapi.json; every error must surface as the client's typed
exception carrying our code, message and field. Image URLs: refused unless the operator lists the
host, refused when the host resolves to a loopback address, cut at the size and time limits.
"""

import base64
import http.server
import json
import os
import re
import threading
import time
import unittest
from pathlib import Path

import openai
import requests
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from server_harness import ASSETS, IMAGES as PHOTOS, OpenApi, Server, TMP, image_bytes, run_tests

DATA = Path(os.environ.get("VLM_TEST_DATA", Path(__file__).resolve().parents[2] / "build" / "test-data")) / "florence2"
NATIVE = DATA / "tasks_native"
API_KEY = "chat-key-" + "z" * 24
URL_LIMIT_MB = 1
TOLERANCE_PX = 1e-3

REFS = None
SPEC = None
SERVER = None  # yolo (default) + florence, API key, no image URL fetching
FETCH = None  # yolo; fetches from localhost, loopback allowed for the test, 1 MiB, 2 s
STRICT = None  # yolo; fetches from localhost and 127.0.0.1, loopback refused (the default)
HOST = None


class ImageHost:
    """A local HTTP server the fetching tests point image URLs at."""

    def __init__(self):
        bus = image_bytes("bus.jpg")
        big = bus + b"\0" * (URL_LIMIT_MB * 1024 * 1024)

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send_body(self, body, length=True):
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                if length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                try:
                    if self.path == "/bus.jpg":
                        self.send_body(bus)
                    elif self.path == "/big.jpg":
                        self.send_body(big)
                    elif self.path == "/big-unannounced.jpg":  # no Content-Length: cut while reading
                        self.close_connection = True
                        self.send_body(big, length=False)
                    elif self.path == "/moved.jpg":
                        self.send_response(302)
                        self.send_header("Location", "/bus.jpg")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    elif self.path == "/slow.jpg":  # a byte every 0.5 s, never silent for a read timeout
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(bus)))
                        self.end_headers()
                        for i in range(20):
                            self.wfile.write(bus[i:i + 1])
                            self.wfile.flush()
                            time.sleep(0.5)
                    else:
                        self.send_error(404)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path, host="localhost"):
        return f"http://{host}:{self.port}{path}"


def setUpModule():
    global REFS, SPEC, SERVER, FETCH, STRICT, HOST
    REFS = json.loads((DATA / "tasks_refs.json").read_text())
    SPEC = OpenApi()
    key_file = TMP / "chat.key"
    key_file.write_text(API_KEY + "\n")
    # No warm-up: these tests time nothing, and three servers warming up on two cores take a minute.
    SERVER = Server("--model", f"florence={NATIVE}", "--api-key-file", str(key_file), "--warmup", "0", api_key=API_KEY)
    limits = ["--image-url-max-mb", str(URL_LIMIT_MB), "--image-url-timeout-s", "2", "--warmup", "0"]
    FETCH = Server("--image-url-hosts", "localhost", "--image-url-allow-private", *limits)
    STRICT = Server("--image-url-hosts", "localhost,127.0.0.1", *limits)
    HOST = ImageHost()


def tearDownModule():
    for server in (SERVER, FETCH, STRICT):
        if server:
            server.stop()
    if HOST:
        HOST.server.shutdown()


def client(server=None, api_key=API_KEY):
    server = server or SERVER
    return openai.OpenAI(base_url=server.base + "/v1", api_key=api_key if server.api_key else "unused", max_retries=0)


def data_url(path):
    return "data:image/jpeg;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def user(url, text=None):
    parts = [{"type": "image_url", "image_url": {"url": url}}]
    if text is not None:
        parts.append({"type": "text", "text": text})
    return [{"role": "user", "content": parts}]


def chat(model, url, text=None, server=None, **kw):
    """A validated ChatCompletion, through the client, checked against the OpenAPI document."""
    raw = client(server).chat.completions.with_raw_response.create(model=model, messages=user(url, text), **kw)
    SPEC.check("/v1/chat/completions", "POST", raw.http_response)
    completion = ChatCompletion.model_validate(raw.http_response.json())
    assert completion.id == "chatcmpl-" + raw.headers["X-Request-Id"], completion.id
    return completion


def stream_chunks(model, url, text=None, server=None):
    """The stream as the server wrote it: every chunk validated, ending with [DONE]."""
    server = server or SERVER
    body = {"model": model, "messages": user(url, text), "stream": True, "stream_options": {"include_usage": True}}
    r = server.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    SPEC.check("/v1/chat/completions", "POST", r)
    assert r.headers["Content-Type"].startswith("text/event-stream"), r.headers
    events = [line[len("data: "):] for line in r.text.split("\n\n") if line]
    assert events[-1] == "[DONE]", events[-1]
    return [ChatCompletionChunk.model_validate(json.loads(e)) for e in events[:-1]]


def detect(server, path, **params):
    files = {"image": ("photo.jpg", Path(path).read_bytes(), "image/jpeg")}
    r = server.post("/detect", files=files, data=params)
    assert r.status_code == 200, r.text
    return r.json()


class Close(unittest.TestCase):
    def assert_close(self, got, want, where=""):
        if isinstance(want, (int, float)) and not isinstance(want, bool):
            self.assertLessEqual(abs(got - want), TOLERANCE_PX, f"{where}: {got} vs {want}")
        elif isinstance(want, list):
            self.assertEqual(len(got), len(want), f"{where}: {got} vs {want}")
            for i, (g, w) in enumerate(zip(got, want)):
                self.assert_close(g, w, f"{where}[{i}]")
        elif isinstance(want, dict):
            self.assertEqual(sorted(got), sorted(want), where)
            for key in want:
                self.assert_close(got[key], want[key], f"{where}.{key}")
        else:
            self.assertEqual(got, want, where)


class Models(unittest.TestCase):
    def test_models_are_openai_model_objects(self):
        raw = client().models.with_raw_response.list()
        SPEC.check("/v1/models", "GET", raw.http_response)
        entries = raw.http_response.json()["data"]
        models = [Model.model_validate(entry) for entry in entries]
        self.assertEqual([m.id for m in models], ["yolo", "florence"])
        for m in models:
            self.assertEqual((m.object, m.owned_by), ("model", "vlmserve"))
            self.assertLessEqual(abs(m.created - time.time()), 3600)
        self.assertEqual([m.id for m in client().models.list()], ["yolo", "florence"])


class Yolo(Close, unittest.TestCase):
    bus = PHOTOS / "bus.jpg"

    def want(self, server=None):
        record = detect(server or SERVER, self.bus, model="yolo")
        return {"width": record["width"], "height": record["height"], "detections": record["detections"]}

    def test_detections_equal_detect(self):
        # The prompt is not read by YOLO: any text, or none, gives the detections.
        for text in (None, "What is in this photo?"):
            completion = chat("yolo", data_url(self.bus), text)
            self.assertEqual(completion.model, "yolo")
            (choice,) = completion.choices
            self.assertEqual((choice.message.role, choice.finish_reason), ("assistant", "stop"))
            got = json.loads(choice.message.content)
            self.assert_close(got, self.want())
            self.assertIn("bus", [d["label"] for d in got["detections"]])
            self.assertEqual((completion.usage.prompt_tokens, completion.usage.completion_tokens,
                              completion.usage.total_tokens), (0, 0, 0))

    def test_stream_carries_the_same_answer(self):
        chunks = stream_chunks("yolo", data_url(self.bus))
        self.assertEqual(chunks[0].choices[0].delta.role, "assistant")
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assert_close(json.loads(content), self.want())
        self.assertEqual([c.choices[0].finish_reason for c in chunks if c.choices][-1], "stop")
        self.assertEqual(chunks[-1].choices, [])
        self.assertEqual(chunks[-1].usage.total_tokens, 0)
        self.assertEqual(len({c.id for c in chunks}), 1)
        # The client's own stream reader gets the same text.
        stream = client().chat.completions.create(model="yolo", messages=user(data_url(self.bus)), stream=True)
        self.assertEqual("".join(c.choices[0].delta.content or "" for c in stream if c.choices), content)

    def test_harmless_fields_are_ignored(self):
        plain = chat("yolo", data_url(self.bus)).choices[0].message.content
        tuned = chat("yolo", data_url(self.bus), temperature=0.2, top_p=0.5, seed=7, user="u1", n=1,
                     presence_penalty=0.1, frequency_penalty=0.1, stream=False)
        self.assert_close(json.loads(tuned.choices[0].message.content), json.loads(plain))

    def test_requests_count_in_metrics_under_their_route(self):
        def images_run():
            for line in SERVER.get("/metrics").text.splitlines():
                if line.startswith('vlm_images_processed_total{model="yolo"}'):
                    return float(line.split()[-1])
            return 0.0

        before = images_run()
        chat("yolo", data_url(self.bus))
        # The image went through the model's batcher, as a /detect image does.
        self.assertEqual(images_run(), before + 1)
        metrics = SERVER.get("/metrics").text
        lines = [line for line in metrics.splitlines()
                 if line.startswith("vlm_http_requests_total") and 'route="/v1/chat/completions"' in line]
        self.assertTrue(any('status="200"' in line for line in lines), lines)

    def test_each_stage_is_timed_once_per_request(self):
        def stage_counts(session):
            text = session.get(SERVER.base + "/metrics", timeout=30).text
            found = re.findall(r'^vlm_request_stage_seconds_count\{model="yolo",stage="([a-z]+)"\} (\d+)$', text, re.M)
            return {stage: int(n) for stage, n in found}

        # One keep-alive connection: the respond stage is recorded once the answer is written, before
        # the connection reads its next request.
        session = requests.Session()
        session.headers.update(SERVER.headers())
        before = stage_counts(session)
        body = {"model": "yolo", "messages": user(data_url(self.bus))}
        for stream in (False, True):
            r = session.post(SERVER.base + "/v1/chat/completions", json=dict(body, stream=stream), timeout=60)
            self.assertEqual(r.status_code, 200, r.text)
        after = stage_counts(session)
        self.assertEqual(sorted(after), sorted(["receive", "decode", "queue", "preprocess", "forward", "postprocess",
                                                "respond"]))
        self.assertEqual({stage: after[stage] - before.get(stage, 0) for stage in after}, dict.fromkeys(after, 2))


class Florence(Close, unittest.TestCase):
    def case(self, task, text=""):
        return next(c for c in REFS["cases"] if c["task"] == task and c["text"] == text)

    def photo(self, case):
        return ASSETS / case["image"]

    def finish_reason(self, case):
        # "length" when transformers' answer used the checkpoint's whole budget (its last token is
        # then the forced end token), "stop" when it ended earlier.
        budget = json.loads((NATIVE / "generation_config.json").read_text())["max_new_tokens"]
        return "length" if len(case["generated_ids"]) - 1 >= budget else "stop"

    def check_usage(self, usage, case):
        # The prompt's text tokens (<s> ... </s>; the processor's image tokens are not counted) and
        # the ids generated after the decoder's start token.
        image_token = json.loads((NATIVE / "config.json").read_text())["image_token_id"]
        prompt = [i for i in case["prompt_ids"] if i != image_token]
        self.assertEqual(usage.prompt_tokens, len(prompt), case["task"])
        self.assertEqual(usage.completion_tokens, len(case["generated_ids"]) - 1, case["task"])
        self.assertEqual(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens)

    def test_task_tokens_answer_as_transformers_and_detect(self):
        # Text answers come as they are; structured ones as the JSON of /detect's `result`.
        for task, text in (("<CAPTION>", ""), ("<OCR_WITH_REGION>", ""),
                           ("<CAPTION_TO_PHRASE_GROUNDING>", "a bus and two people")):
            case = self.case(task, text)
            completion = chat("florence", data_url(self.photo(case)), task + text)
            content = completion.choices[0].message.content
            want = case["answer"]
            got = content if isinstance(want, str) else json.loads(content)
            self.assert_close(got, want, task)
            self.assertEqual(got, detect(SERVER, self.photo(case), model="florence", task=task,
                                         **({"text": text} if text else {}))["result"], task)
            self.assertEqual(completion.choices[0].finish_reason, self.finish_reason(case), task)
            self.check_usage(completion.usage, case)

    def test_default_tasks_for_no_text_and_free_text(self):
        case = self.case("<MORE_DETAILED_CAPTION>")
        for text in (None, " \n"):
            completion = chat("florence", data_url(self.photo(case)), text)
            self.assertEqual(completion.choices[0].message.content, case["answer"], repr(text))
            self.check_usage(completion.usage, case)
        case = self.case("<CAPTION_TO_PHRASE_GROUNDING>", "a bus and two people")
        completion = chat("florence", data_url(self.photo(case)), "a bus and two people")
        self.assert_close(json.loads(completion.choices[0].message.content), case["answer"])

    def test_max_tokens_is_max_new_tokens(self):
        # The client's cap on the answer is Florence-2's max_new_tokens: the same ids /detect gives
        # with that field, cut at the limit ("length"); YOLO writes no tokens and ignores it.
        case = self.case("<MORE_DETAILED_CAPTION>")
        limit = 4
        self.assertGreater(len(case["generated_ids"]) - 1, limit, "the reference answer must be longer than the cap")
        for field in ("max_tokens", "max_completion_tokens"):
            completion = chat("florence", data_url(self.photo(case)), None, **{field: limit})
            want = detect(SERVER, self.photo(case), model="florence", task="<MORE_DETAILED_CAPTION>",
                          max_new_tokens=str(limit))
            self.assertEqual(completion.choices[0].message.content, want["result"], field)
            self.assertEqual(completion.choices[0].finish_reason, "length", field)
            self.assertEqual(completion.usage.completion_tokens, limit, field)
        completion = chat("yolo", data_url(PHOTOS / "bus.jpg"), max_tokens=limit)
        self.assertEqual(completion.choices[0].finish_reason, "stop")
        self.assertEqual(json.loads(completion.choices[0].message.content)["detections"],
                         detect(SERVER, PHOTOS / "bus.jpg", model="yolo")["detections"])

    def test_stream(self):
        case = self.case("<OD>")
        chunks = stream_chunks("florence", data_url(self.photo(case)), "<OD>")
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assert_close(json.loads(content), case["answer"])
        self.check_usage(chunks[-1].usage, case)


class Errors(unittest.TestCase):
    def expect(self, exception, status, code, call, field=None, *fragments):
        with self.assertRaises(exception) as caught:
            call()
        error = caught.exception
        self.assertEqual(error.status_code, status, error.body)
        SPEC.check("/v1/chat/completions", "POST", error.response)
        self.assertEqual(sorted(error.body), ["code", "message", "param", "type"])
        self.assertEqual((error.code, error.param), (code, field), error.body)
        self.assertEqual(error.request_id, error.response.headers["X-Request-Id"])
        for fragment in fragments:
            self.assertIn(fragment, error.body["message"])
        return error

    def create(self, server=None, model="yolo", messages=None, **kw):
        messages = messages or user(data_url(PHOTOS / "bus.jpg"))
        return lambda: client(server).chat.completions.create(model=model, messages=messages, **kw)

    def test_fields_that_would_change_the_answer_are_refused_by_name(self):
        for kw, field in (({"n": 2}, "n"), ({"max_tokens": 0}, "max_tokens"), ({"logprobs": True}, "logprobs"),
                          ({"stop": ["."]}, "stop"),
                          ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools")):
            self.expect(openai.UnprocessableEntityError, 422, "invalid_argument", self.create(**kw), field, field)
        self.expect(openai.UnprocessableEntityError, 422, "unknown_parameter",
                    self.create(extra_body={"best_of": 3}), "best_of", "'best_of'")

    def test_model_image_and_task_errors(self):
        self.expect(openai.NotFoundError, 404, "model_not_found", self.create(model="gpt-4o"), "model", "gpt-4o")
        self.expect(openai.BadRequestError, 400, "missing_image",
                    self.create(messages=[{"role": "user", "content": "describe the photo"}]),
                    "messages[0].content", "image_url")
        field = "messages[0].content[0].image_url.url"
        self.expect(openai.BadRequestError, 400, "bad_base64",
                    self.create(messages=user("data:image/jpeg;base64,@@@@")), field, "base64")
        text = "data:image/jpeg;base64," + base64.b64encode(b"no picture here" * 20).decode()
        self.expect(openai.APIStatusError, 415, "not_an_image", self.create(messages=user(text)), field)
        bus = data_url(PHOTOS / "bus.jpg")
        self.expect(openai.UnprocessableEntityError, 422, "invalid_argument",
                    self.create(model="florence", messages=user(bus, "<NOPE>")), "messages", "<NOPE>")
        self.expect(openai.UnprocessableEntityError, 422, "invalid_argument",
                    self.create(model="florence", messages=user(bus, "<CAPTION>a dog")), "messages", "takes no text")
        self.expect(openai.BadRequestError, 400, "bad_json",
                    self.create(messages=[{"role": "robot", "content": "x"}]), "messages[0].role")

    def test_api_key_is_the_bearer_token(self):
        self.expect(openai.AuthenticationError, 401, "unauthorized",
                    lambda: client(api_key="wrong").chat.completions.create(model="yolo", messages=user("data:,")),
                    None, "API key")
        with self.assertRaises(openai.AuthenticationError):
            client(api_key="wrong").models.list()


class ImageUrls(Close, unittest.TestCase):
    field = "messages[0].content[0].image_url.url"

    def fetch(self, server, url):
        return client(server).chat.completions.create(model="yolo", messages=user(url))

    def expect(self, exception, status, code, server, url, *fragments):
        with self.assertRaises(exception) as caught:
            self.fetch(server, url)
        error = caught.exception
        self.assertEqual((error.status_code, error.code, error.param), (status, code, self.field), error.body)
        for fragment in fragments:
            self.assertIn(fragment, error.body["message"])

    def test_fetching_is_off_by_default(self):
        self.expect(openai.UnprocessableEntityError, 422, "invalid_argument", SERVER, HOST.url("/bus.jpg"),
                    "--image-url-hosts", "data: URL")

    def test_a_listed_host_is_fetched(self):
        got = json.loads(self.fetch(FETCH, HOST.url("/bus.jpg")).choices[0].message.content)
        want = detect(FETCH, PHOTOS / "bus.jpg")
        self.assert_close(got["detections"], want["detections"])

    def test_hosts_off_the_list_redirects_and_limits(self):
        self.expect(openai.UnprocessableEntityError, 422, "invalid_argument", FETCH,
                    HOST.url("/bus.jpg", host="127.0.0.1"), "'127.0.0.1' is not one this server fetches from")
        self.expect(openai.UnprocessableEntityError, 422, "invalid_argument", FETCH, HOST.url("/moved.jpg"),
                    "302", "redirects are not followed")
        for path in ("/big.jpg", "/big-unannounced.jpg"):
            self.expect(openai.APIStatusError, 413, "payload_too_large", FETCH, HOST.url(path), "1048576 bytes")
        start = time.monotonic()
        self.expect(openai.UnprocessableEntityError, 422, "invalid_argument", FETCH, HOST.url("/slow.jpg"),
                    "2000 ms")
        self.assertLess(time.monotonic() - start, 4.5)
        self.expect(openai.UnprocessableEntityError, 422, "invalid_argument", FETCH, HOST.url("/missing.jpg"),
                    "HTTP 404")

    def test_loopback_addresses_are_refused_after_resolution(self):
        # Both names are on the list; both resolve to loopback, which only the test flag allows.
        for host in ("localhost", "127.0.0.1"):
            self.expect(openai.UnprocessableEntityError, 422, "invalid_argument", STRICT,
                        HOST.url("/bus.jpg", host=host), "loopback, private or link-local")


if __name__ == "__main__":
    run_tests()
