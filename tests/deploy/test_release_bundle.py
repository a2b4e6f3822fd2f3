"""Runs the Dockerfile's staging step (scripts/stage_runtime.sh) on the binary CI built with the same
scripts/build.sh the image uses, then starts the staged binary with an empty environment and only
the bundle's library folder: what the runtime image will hold. Reference: the loader itself (ldd)
and the binary's own --version/--help answers."""

import os
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("VLM_TEST_DATA", "/tmp")) / "release-bundle"
SYSTEM_LIBS = ("linux-vdso", "ld-linux", "libc.so", "libm.so", "libdl.so", "librt.so", "libpthread.so",
               "libresolv.so", "libutil.so")


class ReleaseBundleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        build = Path(os.environ["VLM_BIN"]).resolve().parent.parent  # <build>/cli/vlmserve
        cls.stage = DATA / "stage"
        step = ["bash", "scripts/stage_runtime.sh", str(build), str(cls.stage)]
        result = subprocess.run(step, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "VLM_STAGE_LINK": "1"})
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(step)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        cls.binary = cls.stage / "opt" / "vlmserve" / "bin" / "vlmserve"
        cls.env = {"LD_LIBRARY_PATH": str(cls.stage / "opt" / "vlmserve" / "lib"), "PATH": "/usr/bin:/bin",
                   "HOME": str(cls.stage / "var" / "lib" / "vlmserve")}

    def test_layout_matches_the_dockerfile(self):
        for folder in ("opt/vlmserve/bin", "opt/vlmserve/lib", "var/lib/vlmserve/models", "var/lib/vlmserve/audit", "var/lib/vlmserve/keys",
                       "etc/vlmserve"):
            self.assertTrue((self.stage / folder).is_dir(), folder)

    def test_every_library_resolves_inside_the_bundle(self):
        ldd = subprocess.run(["ldd", str(self.binary)], env=self.env, capture_output=True, text=True, check=True)
        lib_dir = str(self.stage / "opt" / "vlmserve" / "lib")
        for line in ldd.stdout.splitlines():
            name, _, rest = line.strip().partition(" => ")
            self.assertNotIn("not found", line)
            if rest and not name.startswith(SYSTEM_LIBS):
                self.assertTrue(rest.startswith(lib_dir), line)

    def test_staged_binary_runs_with_an_empty_environment(self):
        version = subprocess.run([str(self.binary), "--version"], env=self.env, capture_output=True, text=True)
        self.assertEqual(version.returncode, 0, version.stderr)
        self.assertIn("libtorch", version.stdout)
        for command in ("serve", "pull"):
            helped = subprocess.run([str(self.binary), command, "--help"], env=self.env, capture_output=True, text=True)
            self.assertEqual(helped.returncode, 0, helped.stderr)
            self.assertIn("--offline", helped.stdout)


    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.stage, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
