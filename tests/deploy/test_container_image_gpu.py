"""The gpu image, built with buildah on the debootstrapped Debian 12 base (no CUDA base image: nvcc and
the CUDA libraries come from the Python package index). CI machines have no GPU, so this checks what
holds without one: the binary has CUDA kernels and links libtorch_cuda; every library it links
resolves inside the image except the driver's libcuda (the container toolkit mounts it); the
libraries libtorch_cuda and cuDNN open with dlopen are there; `vlmserve --version` reports the CUDA
runtime; on --device cpu it answers as the CLI CI built does; and the image stays under 4.5 GB.
The GPU machines run it only where an engine exists there."""

import json
import os
import shutil
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from container import built_service, image_size, layer_list  # noqa: E402
from test_container_image import MODELS, PHOTO, boxes, cli_record  # noqa: E402

DATA = Path(os.environ.get("VLM_TEST_DATA", "/tmp"))
SIZE_LIMIT = 4.5e9
# Opened with dlopen by libtorch_cuda and cuDNN (scripts/stage_runtime.sh stages them by name).
DLOPENED = ("libcudnn_engines_precompiled.so.9", "libcudnn_engines_runtime_compiled.so.9", "libcudnn_heuristic.so.9",
            "libnvrtc-builtins.so.13.0", "libnvJitLink.so.13", "libtorch_cuda_linalg.so")


class GpuImage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.export = DATA / "yolov5n.torchscript"
        assert cls.export.is_file(), f"{cls.export} missing: the yolo_fixtures test makes it"
        cls.tag, cls.work, cls.container = built_service("vlmserve", DATA, "container-gpu-")

    @classmethod
    def tearDownClass(cls):
        cls.container.remove()
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_size_and_layers(self):
        size = image_size(self.tag)
        layers = layer_list(self.tag)
        print(f"{self.tag}: {size / 1e6:.0f} MB in {len(layers)} layers")
        for layer_size, step in layers:
            print(f"  {layer_size / 1e6:8.1f} MB  {step[:140]}")
        self.assertLess(size, SIZE_LIMIT)

    def test_libraries_resolve_inside_the_image(self):
        ldd = self.container.exec(self.container.env(), ["ldd", "/opt/vlmserve/bin/vlmserve"])
        self.assertEqual(ldd.returncode, 0, ldd.stderr)
        self.assertIn("libtorch_cuda.so => /opt/vlmserve/lib/libtorch_cuda.so", ldd.stdout)
        missing = [line.split()[0] for line in ldd.stdout.splitlines() if "not found" in line and "libcuda.so.1" not in line]
        self.assertEqual(missing, [], ldd.stdout)
        carried = set(os.listdir(Path(self.container.root) / "opt/vlmserve/lib"))
        self.assertEqual([name for name in DLOPENED if name not in carried], [])

    def test_version_reports_cuda_and_cpu_detect_matches_the_cli(self):
        version = self.container.exec(self.container.env(), ["vlmserve", "--version"])
        self.assertEqual(version.returncode, 0, version.stderr)
        cuda = json.loads(version.stdout)["cuda"]
        self.assertEqual((cuda["compiled"], cuda["devices"], cuda.get("runtime", "")[:3]), (True, 0, "13."), cuda)
        shutil.copy(self.export, self.container.volumes[MODELS] / "yolov5n.torchscript")
        shutil.copy(PHOTO, self.container.volumes[MODELS] / "photo.jpg")
        detect = self.container.exec(self.container.env(), ["vlmserve", "detect", f"{MODELS}/photo.jpg", "--device", "cpu",
                                                            "--model", f"yolo={MODELS}/yolov5n.torchscript"])
        self.assertEqual(detect.returncode, 0, detect.stderr[-3000:])
        self.assertEqual(boxes(json.loads(detect.stdout.splitlines()[0])), boxes(cli_record(self.export)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
