"""docker/compose.yaml against the Compose Specification's schema (check-jsonschema's vendored copy,
what `docker compose` and `podman compose` parse) and deploy/k8s against the Kubernetes API schemas
(kubernetes-validate, strict: unknown fields refused, as the API server's strict field validation
does). Each validator must also refuse a copy with one mistake, so one that accepts anything fails."""

import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
# kustomization.yaml is kubectl's build file, not an API resource: no API schema covers it
# (check_deploy.py checks that every resource it lists exists).
MANIFESTS = sorted(p for p in (ROOT / "deploy" / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")


def compose_check(path):
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True)


def k8s_check(paths):
    return subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--no-warn", *map(str, paths)],
                          capture_output=True, text=True)


class DeploySchemas(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp())

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def damaged(self, path, old, new):
        text = path.read_text()
        self.assertIn(old, text)
        copy = self.tmp / path.name
        copy.write_text(text.replace(old, new, 1))
        return copy

    def test_compose_file_matches_the_compose_schema(self):
        result = compose_check(COMPOSE)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # A service key the specification does not have.
        wrong = self.damaged(COMPOSE, "  read_only: true\n", "  read_only: true\n  restart_policy: always\n")
        self.assertNotEqual(compose_check(wrong).returncode, 0)

    def test_manifests_match_the_kubernetes_schemas(self):
        self.assertGreaterEqual(len(MANIFESTS), 6)
        result = k8s_check(MANIFESTS)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        resources = sum(1 for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc)
        self.assertEqual(result.stdout.count(" passed for resource "), resources, result.stdout)
        wrong = self.damaged(ROOT / "deploy" / "k8s" / "deployment.yaml", "readOnlyRootFilesystem: true",
                             "readOnlyRootFilesystm: true")
        self.assertNotEqual(k8s_check([wrong]).returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
