"""Black-box `vlmserve pull` against a loopback hub (tests/hub/hub_emulator.py) over HTTPS with a
certificate made in setup. References: the bytes and hashes the emulator serves, and the real
huggingface_hub library reading (and writing) the same cache."""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_emulator import Emulator, Repo, git_blob_id, make_self_signed_cert, random_bytes, sha256  # noqa: E402

VLM_BIN = os.environ.get("VLM_BIN", "")
TOKEN = "hf_emulator_token_1234"
# `vlmserve pull --help` states these; scripts retry EXIT_NETWORK and fix the command for the others.
EXIT_LOCAL, EXIT_USAGE, EXIT_NETWORK, EXIT_NOT_FOUND = 1, 2, 3, 4
WEIGHTS_SIZE = 3 * 1024 * 1024 + 17  # odd on purpose: not a multiple of any buffer size


def florence_like_repo(repo_id="acme/tiny-florence", **extra):
    files = {
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "README.md": b"# tiny\n",
        "config.json": json.dumps({"model_type": "florence2", "vocab_size": 51289}).encode(),
        "generation_config.json": b'{"num_beams": 3}',
        "preprocessor_config.json": b'{"image_seq_length": 577}',
        "tokenizer.json": json.dumps({"model": {"type": "BPE"}, "added_tokens": []}).encode(),
        "tokenizer_config.json": b'{"model_max_length": 1024}',
        "vocab.json": b'{"a": 0}',
        "merges.txt": b"#version: 0.2\na b\n",
        "modeling_florence2.py": b"raise SystemExit('remote code must not be fetched')\n",
        "model.safetensors": random_bytes(WEIGHTS_SIZE, seed=1),
        "pytorch_model.bin": random_bytes(4096, seed=2),
        "onnx/vision_encoder.onnx": random_bytes(2048, seed=3),
    }
    return Repo(repo_id, files, **extra)


FLORENCE_NEEDED = {"config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
                   "tokenizer_config.json", "vocab.json", "merges.txt", "model.safetensors"}


def sharded_repo():
    index = {"metadata": {"total_size": 3000},
             "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    return Repo("acme/sharded", {
        "config.json": b"{}",
        "model.safetensors.index.json": json.dumps(index).encode(),
        "model-00001-of-00002.safetensors": random_bytes(1000, seed=4),
        "model-00002-of-00002.safetensors": random_bytes(2000, seed=5),
        "model-00003-of-00003.safetensors": random_bytes(10, seed=6),  # not in the index: not fetched
    })


def all_repos():
    return [
        florence_like_repo(tags=("v1.0",)),
        sharded_repo(),
        Repo("ultra/yolo-export", {"README.md": b"yolo", "yolov8n.torchscript": random_bytes(200_000, seed=7),
                                   "yolov8n.pt": random_bytes(1000, seed=8)}),
        florence_like_repo("acme/gated", token=TOKEN),
        florence_like_repo("acme/corrupt", corrupt={"model.safetensors"}),
        florence_like_repo("acme/corrupt-small", corrupt={"config.json"}),
        florence_like_repo("acme/renamed", renamed_from="oldacme/renamed"),
        Repo("acme/gguf", {"README.md": b"x", "model.gguf": b"GGUF"}),
    ]


class HubPullTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not VLM_BIN or not Path(VLM_BIN).exists():
            raise unittest.SkipTest("VLM_BIN is not set to the vlmserve binary")
        base = Path(os.environ.get("VLM_TEST_DATA", tempfile.gettempdir())) / "hub"
        base.mkdir(parents=True, exist_ok=True)
        cls.base = Path(tempfile.mkdtemp(dir=base))
        cls.cert, cls.key = make_self_signed_cert(cls.base)
        cls.repos = {r.repo_id: r for r in all_repos()}
        cls.hub = Emulator(cls.repos.values(), tls=(cls.cert, cls.key))

    @classmethod
    def tearDownClass(cls):
        cls.hub.stop()
        shutil.rmtree(cls.base, ignore_errors=True)

    def setUp(self):
        self.hub.clear_log()
        faults = self.hub.faults
        faults.cut_after.clear()
        faults.bytes_per_second = None
        faults.api_blobs = True
        faults.ignore_range = False
        faults.stall_resumed = False
        faults.hold_blobs_until_clients = 0
        faults.api_busy = 0
        self.cache = Path(tempfile.mkdtemp(dir=self.base))
        self.home = Path(tempfile.mkdtemp(dir=self.base))

    def env(self, **overrides):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "VLM_", "SSL_", "REQUESTS_"))}
        env.update(HOME=str(self.home), VLM_CACHE=str(self.cache), HF_ENDPOINT=self.hub.url(),
                   HF_HUB_CACHE=str(self.home / "hf-cache"), SSL_CERT_FILE=self.cert)
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def pull(self, *args, env=None, preexec_fn=None):
        return subprocess.run([VLM_BIN, "pull", *args], env=env or self.env(), capture_output=True, text=True,
                              timeout=120, preexec_fn=preexec_fn)

    def assert_pulled(self, result, repo_id, needed, cache=None):
        self.assertEqual(result.returncode, 0, result.stderr)
        repo = self.repos[repo_id]
        snapshot = Path(result.stdout.strip())
        folder = (cache or self.cache) / ("models--" + repo_id.replace("/", "--"))
        self.assertEqual(snapshot, folder / "snapshots" / repo.commit)
        present = {str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if not p.is_dir()}
        self.assertEqual(present, needed)
        for name in needed:
            link = snapshot / name
            self.assertTrue(link.is_symlink(), name)
            self.assertFalse(os.path.isabs(os.readlink(link)), name)
            self.assertEqual(link.read_bytes(), repo.files[name], name)
            blob = repo.sibling(name).get("lfs", {}).get("sha256") or git_blob_id(repo.files[name])
            self.assertEqual(link.resolve(), (folder / "blobs" / blob).resolve(), name)
        self.assertEqual(list((folder / "blobs").glob("*.incomplete")), [])
        return snapshot

    def cdn_gets(self, path_part=""):
        return self.hub.requests("cdn", "GET", path_part)

    def test_pull_fetches_only_loader_files_in_huggingface_hub_layout(self):
        result = self.pull("hf://acme/tiny-florence", env=self.env(HF_TOKEN=TOKEN))
        snapshot = self.assert_pulled(result, "acme/tiny-florence", FLORENCE_NEEDED)
        folder = snapshot.parent.parent
        self.assertEqual((folder / "refs" / "main").read_text(), self.repos["acme/tiny-florence"].commit)

        # The token went to the hub, never to the CDN origin the weights were redirected to.
        hub_requests = self.hub.requests("hub")
        self.assertTrue(hub_requests)
        self.assertTrue(all(h.get("authorization") == f"Bearer {TOKEN}" for _, _, _, h in hub_requests))
        self.assertEqual(len(self.cdn_gets()), 1)
        self.assertTrue(all("authorization" not in h for _, _, _, h in self.hub.requests("cdn")))
        fetched = {p.split("/resolve/")[1].split("/", 1)[1] for _, m, p, _ in hub_requests if "/resolve/" in p}
        self.assertEqual(fetched, FLORENCE_NEEDED)

        # huggingface_hub itself finds every file in our cache without the network.
        from huggingface_hub import hf_hub_download, scan_cache_dir
        for name in FLORENCE_NEEDED:
            found = hf_hub_download("acme/tiny-florence", name, cache_dir=self.cache, local_files_only=True)
            self.assertEqual(Path(found), snapshot / name)
        info = scan_cache_dir(self.cache)
        self.assertEqual(info.warnings, [])
        (cached,) = info.repos
        self.assertEqual(cached.repo_id, "acme/tiny-florence")
        self.assertEqual(cached.refs["main"].commit_hash, self.repos["acme/tiny-florence"].commit)

    def test_second_pull_is_served_from_the_cache(self):
        first = self.pull("hf://acme/tiny-florence")
        self.assert_pulled(first, "acme/tiny-florence", FLORENCE_NEEDED)
        self.hub.clear_log()
        second = self.pull("hf://acme/tiny-florence")
        self.assertEqual(second.stdout, first.stdout)
        self.assertEqual(self.cdn_gets(), [])
        self.assertEqual(self.hub.requests("hub", "GET", "/resolve/"), [])  # only the revision lookup

    def test_sharded_and_yolo_repositories(self):
        self.assert_pulled(self.pull("hf://acme/sharded"), "acme/sharded",
                           {"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                            "model-00002-of-00002.safetensors"})
        self.assert_pulled(self.pull("hf://ultra/yolo-export"), "ultra/yolo-export", {"yolov8n.torchscript"})

    def test_revision_tag_and_commit(self):
        commit = self.repos["acme/tiny-florence"].commit
        tagged = self.pull("hf://acme/tiny-florence@v1.0")
        snapshot = self.assert_pulled(tagged, "acme/tiny-florence", FLORENCE_NEEDED)
        self.assertEqual((snapshot.parent.parent / "refs" / "v1.0").read_text(), commit)
        self.hub.clear_log()
        pinned = self.pull(f"hf://acme/tiny-florence@{commit}")
        self.assertEqual(pinned.stdout, tagged.stdout)
        self.assertEqual(self.hub.log, [])  # a cached commit needs no network at all
        missing = self.pull("hf://acme/tiny-florence@no-such-branch")
        self.assertEqual(missing.returncode, EXIT_NOT_FOUND, missing.stderr)
        self.assertIn("404", missing.stderr)
        self.assertIn("revision not found", missing.stderr)

    def test_interrupted_transfer_resumes_with_range(self):
        weights = sha256(self.repos["acme/tiny-florence"].files["model.safetensors"])
        cut = 1_000_003
        self.hub.faults.cut_after[weights] = [cut, 1]
        result = self.pull("hf://acme/tiny-florence")
        self.assert_pulled(result, "acme/tiny-florence", FLORENCE_NEEDED)
        ranges = [h.get("range") for _, _, _, h in self.cdn_gets(weights)]
        self.assertEqual(ranges[0], None)
        self.assertEqual(len(ranges), 2, ranges)
        # The retry asks for exactly the rest: the bytes that reached the disk before the cut.
        self.assertRegex(ranges[1], r"^bytes=\d+-$")
        self.assertLessEqual(int(ranges[1][6:-1]), cut)
        self.assertGreater(int(ranges[1][6:-1]), 0)

    def test_partial_download_survives_the_process_and_resumes(self):
        weights = sha256(self.repos["acme/tiny-florence"].files["model.safetensors"])
        self.hub.faults.cut_after[weights] = [1_500_000, 1]
        self.hub.faults.stall_resumed = True  # every retry is cut before its first byte
        failed = self.pull("hf://acme/tiny-florence")
        self.assertEqual(failed.returncode, EXIT_NETWORK, failed.stderr)
        self.assertIn("model.safetensors", failed.stderr)
        self.assertIn("resumes", failed.stderr)
        blobs = self.cache / "models--acme--tiny-florence" / "blobs"
        partial = blobs / f"{weights}.incomplete"
        kept = partial.stat().st_size
        self.assertEqual(kept, 1_500_000)
        self.assertFalse((blobs / weights).exists())

        self.hub.faults.cut_after.clear()
        self.hub.faults.stall_resumed = False
        self.hub.clear_log()
        resumed = self.pull("hf://acme/tiny-florence")
        self.assert_pulled(resumed, "acme/tiny-florence", FLORENCE_NEEDED)
        self.assertEqual([h.get("range") for _, _, _, h in self.cdn_gets(weights)], [f"bytes={kept}-"])

    def test_server_ignoring_range_restarts_cleanly(self):
        weights = sha256(self.repos["acme/tiny-florence"].files["model.safetensors"])
        self.hub.faults.cut_after[weights] = [700_000, 1]
        self.hub.faults.ignore_range = True  # a mirror without Range support answers 200 with everything
        self.assert_pulled(self.pull("hf://acme/tiny-florence"), "acme/tiny-florence", FLORENCE_NEEDED)

    def test_corrupted_download_is_rejected_and_not_cached(self):
        for repo_id, name in (("acme/corrupt", "model.safetensors"), ("acme/corrupt-small", "config.json")):
            result = self.pull(f"hf://{repo_id}")
            self.assertEqual(result.returncode, EXIT_LOCAL, repo_id)
            self.assertIn(f"{name} from", result.stderr, f"exit {result.returncode}")
            self.assertIn("failed verification", result.stderr)
            content = self.repos[repo_id].files[name]
            expected = sha256(content) if name.endswith(".safetensors") else git_blob_id(content)
            self.assertIn(expected, result.stderr)
            folder = self.cache / ("models--" + repo_id.replace("/", "--"))
            self.assertFalse((folder / "blobs" / expected).exists())
            self.assertEqual(list((folder / "blobs").glob("*.incomplete")), [])
            self.assertFalse((folder / "snapshots" / self.repos[repo_id].commit / name).exists())

    def test_offline_mode_uses_the_cache_and_never_the_network(self):
        online = self.pull("hf://acme/tiny-florence")
        self.assert_pulled(online, "acme/tiny-florence", FLORENCE_NEEDED)
        self.hub.clear_log()
        for env, args in ((self.env(HF_HUB_OFFLINE="1"), []), (self.env(), ["--offline"])):
            offline = self.pull("hf://acme/tiny-florence", *args, env=env)
            self.assertEqual(offline.returncode, 0, offline.stderr)
            self.assertEqual(offline.stdout, online.stdout)
        missing = self.pull("hf://acme/sharded", "--offline")
        self.assertEqual(missing.returncode, EXIT_NOT_FOUND, missing.stderr)
        self.assertIn("not in the cache", missing.stderr)
        self.assertIn("offline", missing.stderr)
        self.assertEqual(self.hub.log, [])

    def test_unreachable_hub_is_a_clear_network_error_and_falls_back_to_cache(self):
        closed = self.env(HF_ENDPOINT="https://127.0.0.1:9")  # discard port: nothing listens
        result = self.pull("hf://acme/tiny-florence", env=closed)
        self.assertEqual(result.returncode, EXIT_NETWORK, result.stderr)
        self.assertIn("network error", result.stderr)
        self.assertIn("--offline", result.stderr)
        online = self.pull("hf://acme/tiny-florence")
        self.assertEqual(online.returncode, 0, online.stderr)
        fallback = self.pull("hf://acme/tiny-florence", env=closed)
        self.assertEqual(fallback.returncode, 0, fallback.stderr)
        self.assertEqual(fallback.stdout, online.stdout)

    def test_busy_hub_is_asked_again(self):
        self.hub.faults.api_busy = 2
        result = self.pull("hf://acme/tiny-florence")
        self.assert_pulled(result, "acme/tiny-florence", FLORENCE_NEEDED)
        # The whole phrase: a bare "503" also matches a log timestamp's milliseconds (...:07.503+00:00).
        self.assertEqual(result.stderr.count("the hub answered 503"), 2, result.stderr)
        self.hub.faults.api_busy = 10  # more than the retries: a clear error, not a hang
        busy = self.pull("hf://acme/sharded")
        self.assertEqual(busy.returncode, EXIT_NETWORK, busy.stderr)
        self.assertIn("503", busy.stderr)
        self.assertIn("not cached either", busy.stderr)

    def test_gated_and_missing_repositories(self):
        anonymous = self.pull("hf://acme/gated")
        self.assertEqual(anonymous.returncode, EXIT_NETWORK, anonymous.stderr)
        self.assertIn("401", anonymous.stderr)
        self.assertIn("set HF_TOKEN", anonymous.stderr)
        wrong = self.pull("hf://acme/gated", env=self.env(HF_TOKEN="hf_wrong"))
        self.assertEqual(wrong.returncode, EXIT_NETWORK, wrong.stderr)
        self.assertIn("401", wrong.stderr)
        self.assertIn("not accepted", wrong.stderr)
        (self.home / ".cache" / "huggingface").mkdir(parents=True)
        (self.home / ".cache" / "huggingface" / "token").write_text(TOKEN + "\n")  # as `hf auth login` leaves it
        self.assert_pulled(self.pull("hf://acme/gated"), "acme/gated", FLORENCE_NEEDED)
        self.assertEqual(self.hub.requests("hub", "GET", "/acme/gated/")[-1][3].get("authorization"), f"Bearer {TOKEN}")

        missing = self.pull("hf://acme/no-such-repo", env=self.env(HF_TOKEN=TOKEN))
        self.assertEqual(missing.returncode, EXIT_NOT_FOUND, missing.stderr)
        self.assertIn("404", missing.stderr)
        self.assertIn("repository not found", missing.stderr)
        # No weights this build loads: a different repository is needed, not a retry (usage, as
        # `vlmserve detect` pointed at a training checkpoint).
        unloadable = self.pull("hf://acme/gguf")
        self.assertEqual(unloadable.returncode, EXIT_USAGE, unloadable.stderr)
        self.assertIn("model.gguf", unloadable.stderr)

    def test_renamed_repository_redirect_is_followed(self):
        result = self.pull("hf://oldacme/renamed")
        self.assertEqual(result.returncode, 0, result.stderr)
        # Cached under the name asked for, as huggingface_hub does.
        self.assertEqual(Path(result.stdout.strip()).parent.parent.name, "models--oldacme--renamed")
        self.assertEqual(Path(result.stdout.strip(), "model.safetensors").read_bytes(),
                         self.repos["acme/renamed"].files["model.safetensors"])

    def test_mirror_without_blob_metadata_is_verified_through_head(self):
        self.hub.faults.api_blobs = False
        self.assert_pulled(self.pull("hf://acme/tiny-florence"), "acme/tiny-florence", FLORENCE_NEEDED)
        self.assertEqual(len(self.hub.requests("hub", "HEAD", "/resolve/")), len(FLORENCE_NEEDED))
        corrupt = self.pull("hf://acme/corrupt")
        self.assertNotEqual(corrupt.returncode, 0)
        self.assertIn("failed verification", corrupt.stderr)

    def test_untrusted_certificate_is_refused(self):
        result = self.pull("hf://acme/tiny-florence", env=self.env(SSL_CERT_FILE=None))
        self.assertEqual(result.returncode, EXIT_NETWORK, result.stderr)
        self.assertIn("verification failed", result.stderr)
        self.assertEqual(self.hub.requests("hub", "GET"), [])

    def test_disk_full_is_reported(self):
        def small_file_limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG, as on a full disk
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
        result = self.pull("hf://acme/tiny-florence", preexec_fn=small_file_limit)
        self.assertEqual(result.returncode, EXIT_LOCAL, result.stderr)
        self.assertIn("disk full", result.stderr)
        self.assertIn("model.safetensors", result.stderr)

    def test_usage_errors_exit_two_before_any_request(self):
        for args, needle in ((["hf://acme"], "hf://acme"), (["acme/tiny-florence"], "acme/tiny-florence"),
                             (["hf://acme/tiny-florence", "--no-such-flag"], "--no-such-flag"), ([], "models")):
            result = self.pull(*args)
            self.assertEqual(result.returncode, EXIT_USAGE, (args, result.stderr))
            self.assertIn(needle, result.stderr)
        self.assertEqual(self.hub.log, [])
        help_text = self.pull("--help").stdout
        for status, meaning in ((EXIT_USAGE, "bad usage"), (EXIT_NETWORK, "network failure"),
                                (EXIT_NOT_FOUND, "not found")):
            self.assertIn(f"{status} {meaning}", help_text)

    def test_concurrent_pulls_download_each_blob_once(self):
        # The weights are held back until all four clients have started, so the others must meet
        # the first one's lock rather than arriving after it finished.
        self.hub.faults.hold_blobs_until_clients = 4
        procs = [subprocess.Popen([VLM_BIN, "pull", "hf://acme/tiny-florence"], env=self.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outputs = [p.communicate(timeout=120) for p in procs]
        for proc, (out, err) in zip(procs, outputs):
            self.assertEqual(proc.returncode, 0, err)
            self.assert_pulled(subprocess.CompletedProcess([], 0, out, err), "acme/tiny-florence", FLORENCE_NEEDED)
        weights = sha256(self.repos["acme/tiny-florence"].files["model.safetensors"])
        self.assertEqual(len(self.cdn_gets(weights)), 1)
        self.assertTrue(any("waiting for another process" in err for _, err in outputs))

    def test_existing_huggingface_hub_cache_is_reused(self):
        # huggingface_hub fills its own cache from the emulator (plain HTTP: its client has its own CA list).
        plain = Emulator(self.repos.values())
        try:
            hf_cache = self.home / "hf-cache"
            script = ("import os, sys; from huggingface_hub import hf_hub_download; "
                      "paths = [hf_hub_download('acme/tiny-florence', f, cache_dir=sys.argv[1]) for f in sys.argv[2:]]; "
                      "print(os.path.dirname(paths[0]))")
            env = self.env(HF_ENDPOINT=plain.url(), HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1")
            made = subprocess.run([sys.executable, "-c", script, str(hf_cache), *sorted(FLORENCE_NEEDED)],
                                  env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(made.returncode, 0, made.stderr)

            offline = self.pull("hf://acme/tiny-florence", "--offline")
            self.assertEqual(offline.returncode, 0, offline.stderr)
            self.assertEqual(Path(offline.stdout.strip()), Path(made.stdout.strip()))

            online = self.pull("hf://acme/tiny-florence", env=self.env(HF_ENDPOINT=plain.url()))
            self.assertEqual(online.returncode, 0, online.stderr)
            self.assertEqual(Path(online.stdout.strip()), Path(made.stdout.strip()))
            self.assertFalse((self.cache / "models--acme--tiny-florence").exists())
        finally:
            plain.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
