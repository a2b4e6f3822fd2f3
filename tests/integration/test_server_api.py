"""POST /detect in every input form and with every parameter, the info routes, auth, request ids and
every error status from a real malformed request; every response is checked against the OpenAPI
document. One server (with an API key) for the whole module."""

import base64
import io
import json
import re
import struct
import subprocess
import time
import unittest
import zlib

import requests

from server_harness import BIN, MODEL, ROOT, TMP, OpenApi, Server, image_bytes, raw_request, parse_response, run_tests

API_KEY = "test-key-" + "x" * 24
SERVER = None
SPEC = None
CLI_RECORDS = {}


def setUpModule():
    global SERVER, SPEC
    key_file = TMP / "api.key"
    key_file.write_text(API_KEY + "\n")
    # Settings arrive by all three routes: flags, a --config file and VLM_* variables (the limits
    # they set are asserted by test_too_many_images and test_oversized_body_with_content_length).
    config = TMP / "server.json"
    config.write_text(json.dumps({"max_images": 4, "cors_origins": ["https://app.example"], "max_body_mb": 64}))
    SERVER = Server("--config", str(config), "--api-key-file", str(key_file), env={"VLM_MAX_BODY_MB": "4"},
                    api_key=API_KEY)
    SPEC = OpenApi()
    # The reference: the same model through `vlmserve detect`, whose per-image record /detect must match.
    out = subprocess.run([BIN, "detect", "--model", f"yolo={MODEL}", str(ROOT / "../shared/assets/images/bus.jpg"),
                          str(ROOT / "../shared/assets/images/zidane.jpg")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for line in out.stdout.splitlines():
        record = json.loads(line)
        CLI_RECORDS[record["path"].rsplit("/", 1)[-1]] = record


def tearDownModule():
    if SERVER:
        SERVER.stop()


def boxes(record):
    return [(d["class_id"], round(d["score"], 4), [round(v, 2) for v in d["box"]]) for d in record["detections"]]


STAGES = ("receive", "decode", "queue", "preprocess", "forward", "postprocess", "respond")


def stage_histograms(text):
    """{stage: (count, sum, [(le, cumulative count), ...])} for the yolo model, from /metrics text."""
    out = {}
    for stage in STAGES:
        labels = rf'model="yolo",stage="{stage}"'
        count = re.search(rf"^vlm_request_stage_seconds_count\{{{labels}\}} (\S+)$", text, re.M)
        total = re.search(rf"^vlm_request_stage_seconds_sum\{{{labels}\}} (\S+)$", text, re.M)
        buckets = re.findall(rf'^vlm_request_stage_seconds_bucket\{{{labels},le="([^"]+)"\}} (\S+)$', text, re.M)
        assert count and total and buckets, f"stage {stage} missing from /metrics"
        out[stage] = (int(count.group(1)), float(total.group(1)), [(float(le), int(n)) for le, n in buckets])
    return out


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width, height):
    """A well-formed PNG (IHDR, a tiny IDAT, IEND) that declares width x height: a decompression bomb's shape."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


class DetectInputs(unittest.TestCase):
    def detect(self, **kw):
        r = SERVER.post("/detect", **kw)
        SPEC.check("/detect", "POST", r)
        return r

    def test_multipart_matches_cli_record(self):
        r = self.detect(files={"image": ("bus.jpg", image_bytes("bus.jpg"), "image/jpeg")})
        self.assertEqual(r.status_code, 200, r.text)
        body = r.json()
        cli = CLI_RECORDS["bus.jpg"]
        self.assertEqual((body["width"], body["height"]), (cli["width"], cli["height"]))
        self.assertEqual(boxes(body), boxes(cli))
        labels = {d["label"] for d in body["detections"]}
        self.assertIn("bus", labels)
        self.assertIn("person", labels)
        self.assertEqual(body["model"], "yolo")
        self.assertEqual(body["request_id"], r.headers["X-Request-Id"])

    def test_raw_body_and_json_base64_give_the_same_answer(self):
        data = image_bytes("zidane.jpg")
        raw = self.detect(data=data, headers={"Content-Type": "image/jpeg"})
        octet = self.detect(data=data, headers={"Content-Type": "application/octet-stream"})
        as_json = self.detect(json={"image": base64.b64encode(data).decode()})
        data_url = self.detect(json={"image": "data:image/jpeg;base64," + base64.b64encode(data).decode()})
        urlsafe = self.detect(json={"image": base64.urlsafe_b64encode(data).decode().rstrip("=")})
        for r in (raw, octet, as_json, data_url, urlsafe):
            self.assertEqual(r.status_code, 200, r.text)
            self.assertEqual(boxes(r.json()), boxes(CLI_RECORDS["zidane.jpg"]))

    def test_multipart_batch_keeps_order(self):
        files = [("image", ("a.jpg", image_bytes("zidane.jpg"), "image/jpeg")),
                 ("image", ("b.jpg", image_bytes("bus.jpg"), "image/jpeg"))]
        r = self.detect(files=files)
        self.assertEqual(r.status_code, 200, r.text)
        results = r.json()["results"]
        self.assertEqual([boxes(x) for x in results], [boxes(CLI_RECORDS["zidane.jpg"]), boxes(CLI_RECORDS["bus.jpg"])])

    def test_json_images_array_is_a_batch(self):
        data = [base64.b64encode(image_bytes(n)).decode() for n in ("bus.jpg", "zidane.jpg")]
        r = self.detect(json={"images": data})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual([boxes(x) for x in r.json()["results"]],
                         [boxes(CLI_RECORDS["bus.jpg"]), boxes(CLI_RECORDS["zidane.jpg"])])
        one = self.detect(json={"images": data[:1]})
        self.assertEqual(len(one.json()["results"]), 1)

    def test_batch_records_a_bad_image_in_its_slot_and_runs_the_rest(self):
        bus = image_bytes("bus.jpg")
        truncated, text = bus[: len(bus) // 3], b"plain text, no picture" * 10
        files = [("image", ("a.jpg", truncated, "image/jpeg")), ("image", ("b.jpg", bus, "image/jpeg")),
                 ("image", ("c.txt", text, "application/octet-stream")),
                 ("image", ("d.jpg", image_bytes("zidane.jpg"), "image/jpeg"))]
        r = self.detect(files=files)
        self.assertEqual(r.status_code, 200, r.text)
        results = r.json()["results"]
        self.assertEqual([x.get("error", {}).get("code") for x in results],
                         ["image_corrupt", None, "not_an_image", None])
        self.assertEqual(boxes(results[1]), boxes(CLI_RECORDS["bus.jpg"]))
        self.assertEqual(boxes(results[3]), boxes(CLI_RECORDS["zidane.jpg"]))
        # Every image failed: the request fails with the first image's status, naming that image.
        r = self.detect(json={"images": [base64.b64encode(truncated).decode(), base64.b64encode(text).decode()]})
        self.assertEqual(r.status_code, 422, r.text)
        self.assertEqual(r.json()["error"]["code"], "image_corrupt")
        self.assertIn("image 0", r.json()["error"]["message"])


class DetectParameters(unittest.TestCase):
    bus = None

    @classmethod
    def setUpClass(cls):
        cls.bus = image_bytes("bus.jpg")

    def run_with(self, params, form=True):
        if form:
            r = SERVER.post("/detect", files={"image": ("bus.jpg", self.bus, "image/jpeg")}, data=params)
        else:
            r = SERVER.post("/detect", data=self.bus, headers={"Content-Type": "image/jpeg"}, params=params)
        SPEC.check("/detect", "POST", r)
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()["detections"]

    def test_conf_filters_scores(self):
        default = self.run_with({})
        high = self.run_with({"conf": "0.8"})
        self.assertTrue(all(d["score"] >= 0.8 for d in high))
        self.assertLess(len(high), len(default))
        self.assertEqual([d for d in default if d["score"] >= 0.8], high)

    def test_query_string_and_form_fields_agree(self):
        self.assertEqual(self.run_with({"conf": "0.5", "classes": "0"}, form=True),
                         self.run_with({"conf": "0.5", "classes": "0"}, form=False))

    def test_classes_keeps_only_those_ids(self):
        persons = self.run_with({"classes": "0"})
        self.assertTrue(persons)
        self.assertTrue(all(d["class_id"] == 0 for d in persons))
        both = self.run_with({"classes": "0,5"})
        self.assertEqual({d["class_id"] for d in both}, {0, 5})

    def test_max_det_caps_count_best_first(self):
        default = self.run_with({})
        top = self.run_with({"max_det": "2"})
        self.assertEqual(len(top), 2)
        self.assertEqual(sorted(d["score"] for d in top), sorted(d["score"] for d in default)[-2:])

    def test_iou_and_agnostic_nms_change_suppression(self):
        loose = self.run_with({"iou": "0.95", "conf": "0.05"})
        tight = self.run_with({"iou": "0.1", "conf": "0.05"})
        self.assertGreater(len(loose), len(tight))
        agnostic = self.run_with({"agnostic_nms": "true", "conf": "0.05"})
        per_class = self.run_with({"agnostic_nms": "false", "conf": "0.05"})
        self.assertLessEqual(len(agnostic), len(per_class))

    def test_class_ids_outside_the_model_are_refused_naming_the_range(self):
        for params, form in (({"classes": "0,80"}, True), ({"classes": "80"}, False)):
            r = SERVER.post("/detect", files={"image": ("bus.jpg", self.bus, "image/jpeg")}, data=params) if form \
                else SERVER.post("/detect", data=self.bus, headers={"Content-Type": "image/jpeg"}, params=params)
            SPEC.check("/detect", "POST", r)
            self.assertEqual(r.status_code, 422, r.text)
            self.assertEqual(r.json()["error"]["code"], "invalid_argument")
            self.assertIn("classes", r.json()["error"]["message"])
            self.assertIn("0..79", r.json()["error"]["message"])

    def test_json_parameters_are_typed(self):
        r = SERVER.post("/detect", json={"image": base64.b64encode(self.bus).decode(), "conf": 0.5, "classes": [0],
                                         "max_det": 3, "model": "yolo"})
        self.assertEqual(r.status_code, 200, r.text)
        dets = r.json()["detections"]
        self.assertLessEqual(len(dets), 3)
        self.assertTrue(all(d["class_id"] == 0 and d["score"] >= 0.5 for d in dets))


class Errors(unittest.TestCase):
    def expect(self, response, status, code, path="/detect", method="POST"):
        self.assertEqual(response.status_code, status, response.text)
        body = response.json()
        self.assertEqual(body["error"]["code"], code, body)
        self.assertEqual(body["error"]["request_id"], response.headers["X-Request-Id"])
        self.assertNotIn("/work/", body["error"]["message"])
        self.assertNotIn(".cpp", body["error"]["message"])
        SPEC.check(path, method, response)
        return body

    def post_image(self, data, ctype="image/jpeg", **kw):
        return SERVER.post("/detect", data=data, headers={"Content-Type": ctype}, **kw)

    def test_not_an_image(self):
        self.expect(self.post_image(b"hello, this is plain text and no picture" * 10), 415, "not_an_image")

    def test_truncated_jpeg(self):
        data = image_bytes("bus.jpg")
        self.expect(self.post_image(data[: len(data) // 3]), 422, "image_corrupt")

    def test_zero_bytes(self):
        self.expect(self.post_image(b""), 400, "empty_input")

    def test_huge_png_header(self):
        body = self.expect(self.post_image(png_header(100000, 100000), "image/png"), 413, "image_too_large")
        self.assertIn("100000", body["error"]["message"])

    def test_wrong_content_type(self):
        self.expect(self.post_image(image_bytes("bus.jpg"), "text/plain"), 415, "unsupported_media_type")

    def test_bad_json(self):
        self.expect(self.post_image(b'{"image": "abc', "application/json"), 400, "bad_json")
        self.expect(self.post_image(b'["not", "an", "object"]', "application/json"), 400, "bad_json")

    def test_bad_base64(self):
        self.expect(SERVER.post("/detect", json={"image": "!!!not base64!!!"}), 400, "bad_base64")
        self.expect(SERVER.post("/detect", json={"image": "QUJDR"}), 400, "bad_base64")  # 30 bits: no whole last byte

    def test_unknown_model(self):
        r = SERVER.post("/detect", files={"image": ("a.jpg", image_bytes("bus.jpg"))}, data={"model": "nope"})
        self.assertIn("yolo", self.expect(r, 404, "model_not_found")["error"]["message"])

    def test_out_of_range_numbers(self):
        files = {"image": ("a.jpg", image_bytes("bus.jpg"))}
        for params, name in (({"conf": "1.5"}, "conf"), ({"iou": "-0.1"}, "iou"), ({"max_det": "0"}, "max_det"),
                             ({"max_det": "2.5"}, "max_det"), ({"conf": "abc"}, "conf"), ({"classes": "80"}, "classes"),
                             ({"classes": "1,,2"}, "classes"), ({"conf": "nan"}, "conf")):
            body = self.expect(SERVER.post("/detect", files=files, data=params), 422, "invalid_argument")
            self.assertIn(name, body["error"]["message"])

    def test_unknown_parameter(self):
        r = SERVER.post("/detect", files={"image": ("a.jpg", image_bytes("bus.jpg"))}, data={"confidence": "0.3"})
        self.expect(r, 422, "unknown_parameter")

    def test_missing_image(self):
        self.expect(SERVER.post("/detect", files={"picture": ("a.jpg", image_bytes("bus.jpg"))}), 422, "unknown_parameter")
        self.expect(SERVER.post("/detect", files={"conf": (None, "0.5")}), 400, "missing_image")
        self.expect(SERVER.post("/detect", json={"conf": 0.5}), 400, "missing_image")

    def test_too_many_images(self):
        files = [("image", (f"{i}.jpg", image_bytes("person.jpg"))) for i in range(5)]
        self.expect(SERVER.post("/detect", files=files), 413, "too_many_images")

    def test_oversized_body_with_content_length(self):
        r = self.post_image(b"\xff" * (5 << 20))
        self.assertEqual(r.status_code, 413)
        self.assertEqual(r.json()["error"]["code"], "payload_too_large")

    def test_unknown_route_and_wrong_method(self):
        self.expect(SERVER.get("/nope"), 404, "not_found", path="/detect")
        r = SERVER.get("/detect")
        self.expect(r, 405, "method_not_allowed", path="/detect")
        self.assertEqual(r.headers["Allow"], "POST")


class InfoRoutesAndAuth(unittest.TestCase):
    def test_health_and_ready_need_no_key(self):
        for path in ("/health", "/ready"):
            r = SERVER.get(path, auth=False)
            self.assertEqual(r.status_code, 200)
            self.assertEqual(r.json(), {"status": "ready"})
            SPEC.check(path, "GET", r)

    def test_every_other_route_needs_the_key(self):
        for method, path in (("GET", "/v1/models"), ("GET", "/metrics"), ("GET", "/openapi.json"), ("POST", "/detect")):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + API_KEY[:-1]},
                            {"Authorization": API_KEY}):
                r = requests.request(method, SERVER.base + path, headers=headers, timeout=10)
                self.assertEqual(r.status_code, 401, (path, headers))
                self.assertEqual(r.json()["error"]["code"], "unauthorized")
                self.assertEqual(r.headers["WWW-Authenticate"], "Bearer")
                SPEC.check(path, method, r)

    def test_models(self):
        r = SERVER.get("/v1/models")
        SPEC.check("/v1/models", "GET", r)
        (model,) = r.json()["data"]
        self.assertEqual((model["name"], model["family"], model["device"], model["status"]), ("yolo", "yolo", "cpu", "ready"))
        self.assertEqual(len(model["classes"]), 80)
        self.assertEqual(model["classes"][5], "bus")
        self.assertTrue(model["default"])
        for key in ("dtype", "attention", "tasks"):
            self.assertIn(key, model)

    def test_openapi_is_the_repo_document(self):
        r = SERVER.get("/openapi.json")
        self.assertEqual(r.json(), json.loads((ROOT / "server" / "openapi.json").read_text()))

    def test_metrics_count_requests_and_images(self):
        SERVER.post("/detect", data=image_bytes("dog.jpg"), headers={"Content-Type": "image/jpeg"})
        text = SERVER.get("/metrics").text
        self.assertRegex(text, r'vlm_http_requests_total\{route="/detect",method="POST",status="200"\} [1-9]')
        self.assertRegex(text, r'vlm_images_processed_total\{model="yolo"\} [1-9]')
        self.assertRegex(text, r'vlm_batch_size_count\{model="yolo"\} [1-9]')
        self.assertRegex(text, r'vlm_model_load_seconds\{model="yolo"\} [0-9.]+')
        self.assertRegex(text, r'vlm_queue_depth\{model="yolo"\} 0')
        self.assertIn("vlm_http_request_duration_seconds_bucket", text)

    def test_metrics_pass_promtool(self):
        # Prometheus' own linter (Debian's prometheus package): exposition syntax, HELP/TYPE, histogram
        # and counter naming. Every family appears once the requests above have run.
        SERVER.post("/detect", data=image_bytes("dog.jpg"), headers={"Content-Type": "image/jpeg"})
        text = SERVER.get("/metrics").text
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        self.assertEqual(lint.returncode, 0, f"promtool check metrics:\n{lint.stdout}{lint.stderr}")

    def test_stage_histograms_account_for_every_request(self):
        # One keep-alive connection: the respond stage is recorded once a response is written, and
        # the connection reads its next request (the last /metrics) only after that.
        session = requests.Session()
        session.headers.update(SERVER.headers())
        before = stage_histograms(session.get(SERVER.base + "/metrics", timeout=30).text)
        names = ["bus.jpg", "zidane.jpg", "dog.jpg", "bus.jpg", "dog.jpg"]
        client_s = []
        for name in names:
            start = time.perf_counter()
            r = session.post(SERVER.base + "/detect", data=image_bytes(name), headers={"Content-Type": "image/jpeg"},
                             timeout=60)
            client_s.append(time.perf_counter() - start)
            self.assertEqual(r.status_code, 200, r.text)
            SPEC.check("/detect", "POST", r)
            timings = r.json()["request_timings"]
            body_stages = [timings[f"{stage}_ms"] for stage in STAGES[:-1]]
            self.assertTrue(all(ms >= 0 for ms in body_stages), timings)
            # The stages tile the request up to its results; the client saw all of it and more.
            self.assertLessEqual(sum(body_stages), timings["total_ms"] + 0.01, timings)
            self.assertLessEqual(timings["total_ms"], client_s[-1] * 1e3 + 1, timings)
            self.assertEqual(timings["batch_images"], 1)
        response = session.get(SERVER.base + "/metrics", timeout=30)
        after = stage_histograms(response.text)
        self.assertIn("# TYPE vlm_request_stage_seconds histogram", response.text)
        stage_sums = {}
        for stage in STAGES:
            count, total, buckets = after[stage]
            self.assertEqual(count - before[stage][0], len(names), stage)
            stage_sums[stage] = total - before[stage][1]
            self.assertGreaterEqual(stage_sums[stage], 0, stage)
            # Cumulative buckets from 0.1 ms to 10 s, ending in +Inf, which holds every observation.
            bounds = [le for le, _ in buckets]
            self.assertEqual(bounds[0], 0.0001)
            self.assertEqual(bounds[-2:], [10.0, float("inf")])
            self.assertEqual(bounds, sorted(bounds))
            self.assertEqual([n for _, n in buckets], sorted(n for _, n in buckets))
            self.assertEqual(buckets[-1][1], count)
        # The server's stages fit inside what the client measured (1 ms of clock slack per request).
        # No lower bound: on a loaded machine the client's own delays are unbounded.
        self.assertLessEqual(sum(stage_sums.values()), sum(client_s) + 1e-3 * len(names), stage_sums)
        self.assertGreater(stage_sums["forward"], 0)
        self.assertGreater(stage_sums["respond"], 0)

    def test_request_id_is_honoured_or_replaced(self):
        r = SERVER.get("/v1/models", headers={"X-Request-Id": "client-id.42"})
        self.assertEqual(r.headers["X-Request-Id"], "client-id.42")
        r = SERVER.get("/v1/models", headers={"X-Request-Id": "bad id with spaces\"{}"})
        self.assertRegex(r.headers["X-Request-Id"], r"^[0-9a-f]{32}$")
        r = SERVER.post("/detect", data=b"", headers={"Content-Type": "image/jpeg", "X-Request-Id": "err-7"})
        self.assertEqual(r.json()["error"]["request_id"], "err-7")

    def test_access_log_line_per_request(self):
        SERVER.get("/v1/models", headers={"X-Request-Id": "log-check-1"})
        line = SERVER.wait_for_log(r"id=log-check-1")
        self.assertIsNotNone(line)
        self.assertRegex(line, r"GET /v1/models 200 \d+B [0-9.]+ms id=log-check-1 peer=127\.0\.0\.1")
        # /health is a probe: logged at debug only, so not at the default info level.
        SERVER.get("/health", headers={"X-Request-Id": "probe-1"}, auth=False)
        SERVER.get("/v1/models", headers={"X-Request-Id": "after-probe"})
        SERVER.wait_for_log(r"id=after-probe")
        self.assertFalse([x for x in SERVER.logs() if "probe-1" in x])

    def test_client_address_headers_and_log_forging_are_ignored(self):
        raw = (b"GET /nope%0a2099-01-01%20info%20FORGED HTTP/1.1\r\nHost: x\r\nREMOTE_ADDR: 6.6.6.6\r\n"
               b"X-Forwarded-For: 6.6.6.6\r\nX-Request-Id: forge-1\r\nConnection: close\r\n\r\n")
        status, _, _ = parse_response(raw_request(SERVER.port, raw))
        self.assertEqual(status, 404)
        line = SERVER.wait_for_log(r"id=forge-1")
        self.assertIsNotNone(line)
        self.assertIn("peer=127.0.0.1", line)
        self.assertNotIn("6.6.6.6", "\n".join(SERVER.logs()))
        self.assertFalse([x for x in SERVER.logs() if x.startswith("2099-01-01")])
        self.assertTrue("\\n" in line or "%0a" in line.lower(), line)

    def test_cors_for_allowed_origins_only(self):
        pre = requests.options(SERVER.base + "/detect", timeout=10, headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        self.assertEqual(pre.status_code, 204)
        self.assertEqual(pre.headers["Access-Control-Allow-Origin"], "https://app.example")
        self.assertIn("POST", pre.headers["Access-Control-Allow-Methods"])
        self.assertIn("Authorization", pre.headers["Access-Control-Allow-Headers"])
        r = SERVER.get("/v1/models", headers={"Origin": "https://app.example"})
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], "https://app.example")
        self.assertIn("X-Request-Id", r.headers["Access-Control-Expose-Headers"])
        other = SERVER.get("/v1/models", headers={"Origin": "https://evil.example"})
        self.assertNotIn("Access-Control-Allow-Origin", other.headers)

    def test_api_key_never_logged(self):
        SERVER.get("/v1/models")
        self.assertNotIn(API_KEY, "\n".join(SERVER.logs()))


if __name__ == "__main__":
    run_tests()
