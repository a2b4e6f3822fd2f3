"""The cpu image, built from scratch with buildah on a debootstrapped Debian 12 base and run with a
read-only root filesystem as its own config says (tests/deploy/container.py). It must: serve /detect
on a real photo with the YOLOv5n export exactly as the CLI CI built answers; pass its HEALTHCHECK on
the port VLM_PORT names; run as uid 10001, which has a passwd entry; write nowhere but its volumes;
load every library it carries (and no CUDA library but the two libtorch_cpu.so links); answer a
request in flight after SIGTERM and exit 0; fetch an hf:// model from the loopback hub emulator over
TLS trusting the emulator's CA (and refuse it with only the system's CAs); and stay under 1.2 GB.
References: `vlmserve detect` of the CI build, the image's HEALTHCHECK command, the kernel's /proc."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
from container import built_service, image_size, layer_list  # noqa: E402
from hub_emulator import Emulator, Repo, make_self_signed_cert  # noqa: E402

DATA = Path(os.environ.get("VLM_TEST_DATA", "/tmp"))
ASSETS = Path(os.environ.get("VLM_ASSETS", "../shared/assets"))
VLM_BIN = os.environ.get("VLM_BIN", "")
PHOTO = ASSETS / "images" / "bus.jpg"
MODELS = "/var/lib/vlmserve/models"
SIZE_LIMIT = 1.2e9
# The CUDA libraries libtorch_cpu.so itself links (the runtime, and CUPTI for its profiler).
CUDA_LIBS_CPU_NEEDS = {"libcudart.so.13", "libcupti.so.13"}
CUDA_LIBRARY = r"lib(cuda|cudart|cupti|cublas|cudnn|cufft|cufile|curand|cusolver|cusparse|nccl|nvrtc|nvJitLink|nvshmem|nvToolsExt|torch_cuda|c10_cuda)\b"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def boxes(record):
    return [(d["class_id"], round(d["score"], 4), [round(v, 2) for v in d["box"]]) for d in record["detections"]]


def cli_record(model):
    """The reference: the CLI CI built, on the same photo and export."""
    result = subprocess.run([VLM_BIN, "detect", str(PHOTO), "--model", f"yolo={model}", "--device", "cpu"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[0])


class CpuImage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.export = DATA / "yolov5n.torchscript"
        assert cls.export.is_file(), f"{cls.export} missing: the yolo_fixtures test makes it"
        cls.tag, cls.work, cls.container = built_service("vlmserve-cpu", DATA, "container-")
        shutil.copy(cls.export, cls.container.volumes[MODELS] / "yolov5n.torchscript")
        cls.reference = cli_record(cls.export)

    @classmethod
    def tearDownClass(cls):
        cls.container.remove()
        shutil.rmtree(cls.work, ignore_errors=True)

    def wait_healthy(self, server, env):
        for _ in range(240):
            if self.container.healthcheck(env):
                return
            if server.poll() is not None:
                self.fail(f"the server exited {server.returncode}:\n{server.stdout.read()[-3000:]}")
            time.sleep(0.5)
        self.fail("HEALTHCHECK never passed")

    def test_size_and_layers(self):
        size = image_size(self.tag)
        layers = layer_list(self.tag)
        print(f"{self.tag}: {size / 1e6:.0f} MB in {len(layers)} layers")
        for layer_size, step in layers:
            print(f"  {layer_size / 1e6:8.1f} MB  {step[:140]}")
        self.assertLess(size, SIZE_LIMIT)

    def test_service_user_has_a_passwd_entry(self):
        result = self.container.exec(self.container.env(), ["getent", "passwd", "10001"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split(":")[0], "vlmserve")
        self.assertEqual(self.container.user, "10001:10001")

    def test_serves_detect_as_the_cli_does_and_drains_on_sigterm(self):
        port = free_port()
        # VLM_PORT alone moves the server: the image's CMD names no port and its HEALTHCHECK follows.
        self.assertNotIn("--port", self.container.default_command())
        env = self.container.env(VLM_PORT=str(port), VLM_MODEL=f"yolo={MODELS}/yolov5n.torchscript")
        server = self.container.start(env)
        try:
            self.wait_healthy(server, env)
            # /health answers while the model loads; /ready once it takes requests.
            for _ in range(240):
                if requests.get(f"http://127.0.0.1:{port}/ready", timeout=10).status_code == 200:
                    break
                time.sleep(0.5)
            status = Path(f"/proc/{server.pid}/status").read_text()
            uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
            self.assertEqual(uids, ["10001"] * 4)
            self.assertEqual(Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")[:2], [b"vlmserve", b"serve"])

            with PHOTO.open("rb") as photo:
                answer = requests.post(f"http://127.0.0.1:{port}/detect", files={"image": ("bus.jpg", photo, "image/jpeg")},
                                       timeout=120)
            self.assertEqual(answer.status_code, 200, answer.text[:500])
            body = answer.json()
            self.assertEqual((body["width"], body["height"]), (self.reference["width"], self.reference["height"]))
            self.assertGreater(len(body["detections"]), 0)
            self.assertEqual(boxes(body), boxes(self.reference))

            # Every library the image carries is one the server has loaded.
            carried = set(os.listdir(Path(self.container.root) / "opt/vlmserve/lib"))
            maps = Path(f"/proc/{server.pid}/maps").read_text()
            # Paths as the reader sees them: the container's root shows under its mount point here.
            loaded = {Path(line.split()[-1]).name for line in maps.splitlines() if "/opt/vlmserve/lib/" in line}
            self.assertEqual(carried - loaded, set(), "libraries carried but never loaded")
            cuda = {name for name in carried if re.match(CUDA_LIBRARY, name)}
            self.assertEqual(cuda, CUDA_LIBS_CPU_NEEDS)

            # The root filesystem is read-only; the volumes are the server's (the audit key it made).
            for path in ("/opt/vlmserve/probe", "/var/lib/vlmserve/probe", "/etc/probe"):
                wrote = self.container.exec(env, ["touch", path])
                self.assertNotEqual(wrote.returncode, 0, path)
                self.assertIn("Read-only file system", wrote.stderr)
            key = self.container.volumes["/var/lib/vlmserve/keys"] / "audit.key"
            self.assertEqual((key.stat().st_uid, key.stat().st_mode & 0o777), (10001, 0o600))

            # A request whose body is still arriving when SIGTERM comes is answered, then the server exits 0.
            data = PHOTO.read_bytes()
            in_flight = socket.create_connection(("127.0.0.1", port), timeout=60)
            in_flight.sendall(b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(data) + data[: len(data) // 2])
            time.sleep(1.0)  # its headers are parsed and it is admitted
            server.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            in_flight.sendall(data[len(data) // 2:])
            raw = b""
            while part := in_flight.recv(65536):
                raw += part
            in_flight.close()
            self.assertEqual(server.wait(timeout=60), 0, server.stdout.read()[-3000:])
            head, _, payload = raw.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), raw[:300])
            self.assertEqual(boxes(json.loads(payload)), boxes(self.reference))
            self.assertFalse(self.container.healthcheck(env), "HEALTHCHECK passes with the server gone")
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            server.stdout.close()

    def test_hf_model_over_tls_with_the_emulators_ca(self):
        secrets = self.work / "hub-ca"
        secrets.mkdir()
        cert, key = make_self_signed_cert(secrets)
        os.chmod(cert, 0o644)
        hub = Emulator([Repo("ultralytics/yolov5n-export", {"README.md": b"export",
                                                             "yolov5n.torchscript": self.export.read_bytes()})],
                       tls=(cert, key))
        try:
            # The CA goes where a secret would be mounted; the image's own bundle does not know it.
            binds = {"/etc/vlmserve": secrets}
            env = self.container.env(HF_ENDPOINT=hub.url())
            command = ["vlmserve", "detect", f"{MODELS}/photo.jpg", "--model", "yolo=hf://ultralytics/yolov5n-export"]
            shutil.copy(PHOTO, self.container.volumes[MODELS] / "photo.jpg")
            refused = self.container.exec(env, command, binds)
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("certificate", refused.stderr)
            trusted = self.container.exec({**env, "SSL_CERT_FILE": f"/etc/vlmserve/{Path(cert).name}"}, command, binds)
            self.assertEqual(trusted.returncode, 0, trusted.stderr[-3000:])
            record = json.loads(trusted.stdout.splitlines()[0])
            self.assertEqual(boxes(record), boxes(self.reference))
            self.assertEqual(len(hub.requests("cdn", "GET")), 1)
        finally:
            hub.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
