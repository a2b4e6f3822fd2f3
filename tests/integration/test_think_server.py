"""POST /think against a real `vlmserve serve` with the YOLOv5n export: answers checked against
/detect on the same model, every input form and error path, policy refusals, 32 concurrent requests,
and no-leak canaries, then the audit log verified with `vlmserve audit verify` after shutdown.

Canaries (each a unique token that appears nowhere else):
  OBS   in the class names of every class but person (a copy of the export with renamed classes), so
        the observe and ground steps' text carries it whenever anything but a person is detected;
  TOPIC the policy topic name, which the check step writes when it refuses;
  Q     in every question, which is private: the audit log keeps only its HMAC.
None may appear in any response (success or error), log line, metric or audit record. Describe
questions are left out of the OBS check on purpose: their answer lists the detected labels.
"""

import concurrent.futures
import json
import os
import subprocess
import unittest

from server_harness import BIN, IMAGES, MODEL, TMP, OpenApi, Server, image_bytes, run_tests

API_KEY = "think-key-" + "k" * 24
OBS = "obscanary7f3a"
TOPIC = "topiccanary9b2e"
Q = "qcanary51d0"
REFUSAL = "I can't identify people from their appearance."
SERVER = None
SPEC = None
AUDIT = TMP / "audit"
STATE = {"requests": 0, "bodies": [], "metrics": ""}


def make_canary_model():
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    import torch

    extra = {"config.txt": ""}
    module = torch.jit.load(str(MODEL), _extra_files=extra)
    config = json.loads(extra["config.txt"])
    names = config["names"]
    items = names.items() if isinstance(names, dict) else enumerate(names)
    renamed = {str(i): (n if n == "person" else f"{n} {OBS}") for i, n in items}
    config["names"] = renamed if isinstance(names, dict) else [renamed[str(i)] for i in range(len(renamed))]
    target = TMP / "canary.torchscript"
    torch.jit.save(module, str(target), _extra_files={"config.txt": json.dumps(config)})
    return target


def setUpModule():
    global SERVER, SPEC
    SPEC = OpenApi()
    os.chmod(TMP, 0o700)
    AUDIT.mkdir(mode=0o700)
    policy = TMP / "policy.json"
    policy.write_text(json.dumps({"version": 1, "refuse": [{"topic": TOPIC, "match": ["who is this"], "refusal": REFUSAL}]}))
    key_file = TMP / "api.key"
    key_file.write_text(API_KEY + "\n")
    SERVER = Server("--model", f"canary={make_canary_model()}", "--api-key-file", str(key_file),
                    "--audit-dir", str(AUDIT / "log"), "--audit-key-file", str(AUDIT / "audit.key"),
                    "--audit-checkpoint-copy", str(AUDIT / "checkpoints.jsonl"), "--audit-checkpoint-records", "10",
                    "--think-policy", str(policy), "--log-level", "debug", "--warmup", "1", "--timeout-s", "300",
                    # 32 concurrent requests below, all answered: a queue that holds them all.
                    "--queue", "32",
                    api_key=API_KEY)


def tearDownModule():
    if SERVER:
        SERVER.stop()


def think(question=None, image="bus.jpg", form="multipart", model="canary", extra=None):
    STATE["requests"] += 1
    params = dict(extra or {})
    if question is not None:
        params["question"] = question
    if model:
        params["model"] = model
    if form == "multipart":
        response = SERVER.post("/think", files={"image": (image, image_bytes(image), "image/jpeg")}, data=params)
    elif form == "raw":
        response = SERVER.post("/think", params=params, data=image_bytes(image),
                               headers={"Content-Type": "image/jpeg"})
    else:
        import base64

        body = dict(params, image=base64.b64encode(image_bytes(image)).decode())
        response = SERVER.post("/think", json=body)
    STATE["bodies"].append(response.text + json.dumps(dict(response.headers)))
    SPEC.check("/think", "post", response)
    return response


def detected(image, label):
    response = SERVER.post("/detect", files={"image": (image, image_bytes(image), "image/jpeg")},
                           data={"model": "canary", "conf": "0.25"})
    assert response.status_code == 200, response.text
    return [d for d in response.json()["detections"] if d["label"] == label]


def assert_no_canary(testcase, text, where, canaries=(OBS, TOPIC, Q)):
    for canary in canaries:
        testcase.assertNotIn(canary, text, f"canary {canary} leaked into {where}")


class ThinkTest(unittest.TestCase):
    def test_1_count_matches_detect_in_every_input_form(self):
        for image in ("bus.jpg", "zidane.jpg"):
            people = detected(image, "person")
            self.assertGreater(len(people), 0)
            for form in ("multipart", "raw", "json"):
                response = think(f"How many people are in this {Q} photo?", image=image, form=form)
                self.assertEqual(response.status_code, 200, response.text)
                body = response.json()
                self.assertEqual(body["kind"], "count")
                self.assertEqual(body["outcome"], "answered")
                n = len(people)
                self.assertEqual(body["answer"], "There is 1 person." if n == 1 else f"There are {n} people.")
                got, want = sorted(e["box"] for e in body["evidence"]), sorted(d["box"] for d in people)
                self.assertEqual(len(got), len(want))
                for g, w in zip(got, want):
                    self.assertTrue(all(abs(a - b) <= 0.011 for a, b in zip(g, w)), (g, w))
                self.assertEqual(len(body["audit_id"]), 64)
                self.assertEqual(set(body["timings"]), {"observe_ms", "read_ms", "ground_ms", "check_ms", "total_ms"})
                # Only the documented fields: nothing from the steps rides along.
                self.assertEqual(set(body), {"answer", "kind", "evidence", "outcome", "timings", "models", "audit_id",
                                             "request_id"})
                assert_no_canary(self, response.text, f"{form} response")

    def test_2_refusal_and_unanswerable(self):
        response = think(f"Who is this {Q} person?", image="zidane.jpg")
        self.assertEqual(response.status_code, 200, response.text)
        body = response.json()
        self.assertEqual((body["kind"], body["answer"], body["evidence"], body["outcome"]),
                         ("refusal", REFUSAL, [], "refused"))
        assert_no_canary(self, response.text, "refusal")
        response = think(f"What does the {Q} sign say?")
        self.assertEqual(response.json()["kind"], "unanswerable", response.text)
        self.assertIn("no OCR-capable model", response.json()["answer"])
        assert_no_canary(self, response.text, "unanswerable answer")
        # A subject the detector has no class for cannot be counted (bus is named 'bus <canary>' here).
        response = think(f"how many giraffes {Q}?")
        self.assertEqual(response.json()["kind"], "unanswerable", response.text)
        assert_no_canary(self, response.text, "unanswerable count")

    def test_2b_canaries_reach_the_steps(self):
        # Positive control: the renamed classes do flow through the model into the steps, so their
        # absence elsewhere means something. A describe answer lists detected labels, bus included.
        response = think(f"describe this {Q} image", image="bus.jpg")
        self.assertEqual(response.status_code, 200, response.text)
        self.assertIn(f"bus {OBS}", response.json()["answer"])

    def test_3_error_paths_carry_no_private_text(self):
        cases = [
            (dict(question=None), 400, "missing_question"),
            (dict(question=f"how many people {Q}", extra={"color": "red"}), 422, "unknown_parameter"),
            (dict(question=f"how many people {Q}", model="nosuchmodel"), 404, "model_not_found"),
            (dict(question=f"?? {Q}"[:2]), 422, "invalid_argument"),
            (dict(question=f"how many people {Q} " + "x" * 600), 422, "invalid_argument"),
            # Parameters of the wrong JSON type get the code openapi.json documents for them.
            (dict(question=7, form="json"), 422, "invalid_argument"),
            (dict(question=f"how many people {Q}", model=["canary"], form="json"), 422, "invalid_argument"),
        ]
        for kwargs, status, code in cases:
            response = think(**kwargs)
            self.assertEqual(response.status_code, status, response.text)
            self.assertEqual(response.json()["error"]["code"], code)
            assert_no_canary(self, response.text, f"{code} error")
        STATE["requests"] += 1
        response = SERVER.post("/think", files={"image": ("x.jpg", b"not an image at all", "image/jpeg")},
                               data={"question": f"how many people {Q}"})
        self.assertEqual(response.status_code, 415, response.text)
        SPEC.check("/think", "post", response)
        assert_no_canary(self, response.text, "not_an_image error")
        STATE["requests"] += 1
        response = SERVER.post("/think", files=[("image", ("a.jpg", image_bytes("bus.jpg"), "image/jpeg")),
                                                ("image", ("b.jpg", image_bytes("bus.jpg"), "image/jpeg"))],
                               data={"question": f"how many people {Q}"})
        self.assertEqual(response.status_code, 413, response.text)
        SPEC.check("/think", "post", response)
        assert_no_canary(self, response.text, "too_many_images error")

    def test_4_thirty_two_concurrent_requests(self):
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            responses = list(pool.map(lambda i: think(f"how many people {Q} {i}?", image="bus.jpg"), range(32)))
        for response in responses:
            self.assertEqual(response.status_code, 200, response.text)
            assert_no_canary(self, response.text, "concurrent response")
        self.assertEqual(len({r.json()["audit_id"] for r in responses}), 32)
        self.assertEqual(len({r.json()["request_id"] for r in responses}), 32)
        STATE["metrics"] = SERVER.get("/metrics").text

    def test_5_cli_think_gives_the_same_answer(self):
        response = think("How many people are in this photo?", image="bus.jpg", model="yolo")
        self.assertEqual(response.status_code, 200, response.text)
        cli_audit = TMP / "cli-audit"
        cli_audit.mkdir(mode=0o700)
        out = subprocess.run([BIN, "think", str(IMAGES / "bus.jpg"), "--question", "How many people are in this photo?",
                              "--model", f"yolo={MODEL}", "--audit-dir", str(cli_audit / "log"),
                              "--audit-key-file", str(cli_audit / "audit.key")],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        body = json.loads(out.stdout)
        for field in ("answer", "kind", "evidence", "outcome", "models"):
            self.assertEqual(body[field], response.json()[field], field)
        verify = subprocess.run([BIN, "audit", "verify", str(cli_audit / "log"), "--public-key",
                                 str(cli_audit / "audit.key.ed25519.pub")], capture_output=True, text=True, timeout=60)
        self.assertEqual(verify.returncode, 0, verify.stdout)
        found = subprocess.run([BIN, "audit", "find", str(cli_audit / "log"), "--id", body["audit_id"]],
                               capture_output=True, text=True, timeout=60)
        self.assertIn('"outcome": "answered"', found.stdout)
        missing = subprocess.run([BIN, "think", str(IMAGES / "bus.jpg"), "--model", f"yolo={MODEL}"],
                                 capture_output=True, text=True, timeout=300)
        self.assertEqual(missing.returncode, 2)
        self.assertIn("think needs --question", missing.stderr)

    def test_9_logs_metrics_and_audit_after_shutdown(self):
        self.assertTrue(STATE["metrics"], "metrics were not collected")
        assert_no_canary(self, STATE["metrics"], "metrics")
        for body in STATE["bodies"]:
            assert_no_canary(self, body, "a response", canaries=(TOPIC, Q))
        self.assertEqual(SERVER.terminate(), 0)
        logs = "\n".join(SERVER.logs())
        self.assertIn("POST /think", logs)
        assert_no_canary(self, logs, "the server log")

        records = []
        for path in sorted((AUDIT / "log").glob("audit*.jsonl")):
            text = path.read_text()
            assert_no_canary(self, text, f"audit file {path.name}")
            self.assertNotIn(API_KEY, text, "the API key itself is never logged")
            records += [json.loads(line) for line in text.splitlines()]
        requests_logged = [r for r in records if r["type"] == "request"]
        self.assertEqual(len(requests_logged), STATE["requests"], "one audit record per /think request")
        self.assertEqual({r["client"] for r in requests_logged}, {requests_logged[0]["client"]})
        self.assertRegex(requests_logged[0]["client"], r"^key-[0-9a-f]{16}$")
        self.assertEqual(records[-1]["type"], "checkpoint", "shutdown writes a final checkpoint")
        outcomes = {r["outcome"] for r in requests_logged}
        self.assertTrue({"answered", "refused", "unanswerable", "error:missing_question", "error:not_an_image"} <= outcomes,
                        outcomes)

        verify = subprocess.run([BIN, "audit", "verify", str(AUDIT / "log"),
                                 "--public-key", str(AUDIT / "audit.key.ed25519.pub"),
                                 "--checkpoints", str(AUDIT / "checkpoints.jsonl")],
                                capture_output=True, text=True, timeout=60)
        print(verify.stdout)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        self.assertTrue(verify.stdout.startswith("OK: "), verify.stdout)

        # The key holder can confirm a candidate question against its record, and only the right one.
        refused = next(r for r in requests_logged if r["outcome"] == "refused")
        for question, status in ((f"Who is this {Q} person?", 0), ("Who is this person?", 1)):
            found = subprocess.run([BIN, "audit", "find", str(AUDIT / "log"), "--id", refused["request_id"],
                                    "--audit-key-file", str(AUDIT / "audit.key"), "--question", question],
                                   capture_output=True, text=True, timeout=60)
            self.assertEqual(found.returncode, status, found.stdout + found.stderr)


if __name__ == "__main__":
    run_tests()
