"""check_deploy.py must fail on each kind of mistake it claims to catch: each case damages one
thing in a copy of the repo's deployment files and expects that exact check to turn FAIL (and to
pass on the undamaged copy)."""

import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKER = Path(__file__).resolve().parent / "check_deploy.py"
COPIED = ("docker", "deploy", "cli", "server", "scripts", ".ci", "tests")


def run_checker(root):
    result = subprocess.run([sys.executable, str(CHECKER), "--root", str(root)], capture_output=True, text=True)
    return {line[6:].split(" -- ")[0] for line in result.stdout.splitlines() if line.startswith("FAIL  ")}, result


def replace(path, old, new):
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


CASES = {
    "a RUN step that is not a script": (
        lambda r: replace(r / "docker/Dockerfile", "bash scripts/build.sh image-cpu", "apt-get install -y curl && bash scripts/build.sh image-cpu"),
        "[build-cpu] RUN is a call to a repo script: apt-get install -y curl && bash scripts/build.sh image-cpu vlmserve"),
    "an NVIDIA base image": (
        lambda r: replace(r / "docker/Dockerfile", "FROM build-base AS build-gpu", "FROM nvidia/cuda:13.0.1-devel-ubuntu24.04 AS build-gpu"),
        "[build-gpu] builds on the Debian base or an earlier stage"),
    "a CMD that pins the port": (lambda r: replace(r / "docker/Dockerfile", 'CMD ["serve"]', 'CMD ["serve", "--port", "8080"]'),
                                 "[cpu] CMD leaves host and port to the environment"),
    "a runtime stage that installs packages": (
        lambda r: replace(r / "docker/Dockerfile", "FROM ${DEBIAN_IMAGE} AS cpu\n", "FROM ${DEBIAN_IMAGE} AS cpu\nRUN [\"apt-get\", \"install\", \"-y\", \"curl\"]\n"),
        '[cpu] RUN only adds the service user (uid 10001): ["apt-get", "install", "-y", "curl"]'),
    "a compose image that is not the built tag": (
        lambda r: replace(r / "docker/compose.yaml", "image: vlmserve:cpu", "image: vlmserve:latest"),
        "compose[vlmserve-cpu]: image is the tag the README builds its target as"),
    "a writable root filesystem in the pod": (
        lambda r: replace(r / "deploy/k8s/deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"),
        "k8s container audit-key: read-only root filesystem"),
    "a script that does not exist": (
        lambda r: (r / "scripts/stage_runtime.sh").unlink(), "[build-gpu] scripts/stage_runtime.sh exists"),
    "a script CI never runs": (
        lambda r: (shutil.copy(r / "scripts/build.sh", r / "scripts/build_image.sh"),
                   replace(r / "docker/Dockerfile", "bash scripts/build.sh image-cpu", "bash scripts/build_image.sh image-cpu")),
        "[build-cpu] scripts/build_image.sh is run by CI too"),
    "a root runtime": (lambda r: replace(r / "docker/Dockerfile", "USER 10001:10001\nWORKDIR /var/lib/vlmserve\nVOLUME", "USER root\nWORKDIR /var/lib/vlmserve\nVOLUME"),
                       "[cpu] runs as a non-root user"),
    "a wrong entrypoint": (lambda r: replace(r / "docker/Dockerfile", 'ENTRYPOINT ["vlmserve"]', 'ENTRYPOINT ["/bin/sh"]'),
                           '[cpu] ENTRYPOINT ["vlmserve"]'),
    "a misspelt compose variable": (lambda r: replace(r / "docker/compose.yaml", "    VLM_DRAIN_TIMEOUT_S:", "    VLM_DRAIN_TIMEOUT:"),
                                    "compose[vlmserve-cpu]: VLM_DRAIN_TIMEOUT is an option's variable"),
    "a readiness probe on the wrong path": (
        lambda r: replace(r / "deploy/k8s/deployment.yaml", "path: /ready", "path: /health"), "readiness probe on /ready"),
    "an unknown flag in the pod args": (
        lambda r: replace(r / "deploy/k8s/deployment.yaml", '"--port", "8080"]', '"--port", "8080", "--no-such-flag"]'),
        "container flag --no-such-flag is in the option table"),
    "an HPA metric the server does not export": (
        lambda r: replace(r / "deploy/k8s/hpa.yaml", "name: vlm_queue_depth", "name: vlm_queue_length"),
        "HPA scales on the pods metric vlm_queue_depth"),
    "a Service that selects nothing": (
        lambda r: replace(r / "deploy/k8s/service.yaml", "  selector:\n    app.kubernetes.io/name: vlmserve", "  selector:\n    app.kubernetes.io/name: vlm"),
        "Service selects the Deployment's pods"),
    "a grace period shorter than the drain": (
        lambda r: replace(r / "deploy/k8s/deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 20"),
        "terminationGracePeriodSeconds 20 > preStop 5.0 + drain 30.0"),
    "a Kustomization resource that is missing": (
        lambda r: (r / "deploy/k8s/pdb.yaml").unlink(), "k8s kustomization.yaml: resource pdb.yaml exists"),
}


class CheckDeployCatchesMistakes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp())
        cls.pristine = cls.tmp / "pristine"
        for name in COPIED:
            shutil.copytree(ROOT / name, cls.pristine / name, ignore=shutil.ignore_patterns("__pycache__"))
        cls.baseline, _ = run_checker(cls.pristine)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_each_mistake_is_reported(self):
        for label, (damage, expected) in CASES.items():
            with self.subTest(label):
                self.assertNotIn(expected, self.baseline)
                copy = self.tmp / label.replace(" ", "_")
                shutil.copytree(self.pristine, copy)
                damage(copy)
                failures, result = run_checker(copy)
                self.assertIn(expected, failures, result.stdout[-3000:])
                self.assertNotEqual(result.returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
