"""Runs the Dockerfile's staging step (scripts/stage_runtime.sh) on the binary CI built with the same
scripts/build.sh the image uses, then starts the staged binary with an empty environment and only
the bundle's library folder: what the runtime image will hold; then runs the image's own ENV,
ENTRYPOINT/CMD and HEALTHCHECK against it. References: the loader itself (ldd), the binary's own
answers, and the server's /health."""

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("VLM_TEST_DATA", "/tmp")) / "release-bundle"
SYSTEM_LIBS = ("linux-vdso", "ld-linux", "libc.so", "libm.so", "libdl.so", "librt.so", "libpthread.so",
               "libresolv.so", "libutil.so")


def dockerfile_stage(name):
    """ENV (dict), ENTRYPOINT, CMD and HEALTHCHECK command (lists) of one Dockerfile stage."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from check_deploy import exec_form, parse_dockerfile

    env, entrypoint, cmd, health, current = {}, None, None, None, None
    for keyword, rest in parse_dockerfile(ROOT / "docker" / "Dockerfile"):
        if keyword == "FROM":
            current = rest.split()[-1]
        elif current != name:
            continue
        elif keyword == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
        elif keyword == "ENTRYPOINT":
            entrypoint = exec_form(rest)
        elif keyword == "CMD":
            cmd = exec_form(rest)
        elif keyword == "HEALTHCHECK":
            health = exec_form(rest[rest.index("CMD") + 3:].strip())
    return env, entrypoint, cmd, health


def libraries_staging_reads(binary):
    """Identity and last write of every library stage_runtime.sh reads for `binary`: what the loader
    resolves (ldd) and the torch wheel's and nvidia-* wheels' library folders."""
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    paths = {Path(line.split(" => ", 1)[1].rsplit(" (", 1)[0]) for line in ldd.splitlines() if " => /" in line}
    torch_lib = next((p.parent for p in paths if p.name == "libc10.so"), None)
    if torch_lib is not None:
        paths |= set(torch_lib.glob("*.so*")) | set(torch_lib.parent.parent.glob("nvidia/*/lib/*.so*"))
    return {str(p): (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) for p in paths if p.is_file() for st in [p.stat()]}


class ReleaseBundleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        build = Path(os.environ["VLM_BIN"]).resolve().parent.parent  # <build>/cli/vlmserve
        cls.stage = DATA / "stage"
        cls.sources_before = libraries_staging_reads(build / "cli" / "vlmserve")
        step = ["bash", "scripts/stage_runtime.sh", str(build), str(cls.stage)]
        result = subprocess.run(step, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "VLM_STAGE_LINK": "1"})
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(step)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        cls.binary = cls.stage / "opt" / "vlmserve" / "bin" / "vlmserve"
        cls.env = {"LD_LIBRARY_PATH": str(cls.stage / "opt" / "vlmserve" / "lib"), "PATH": "/usr/bin:/bin",
                   "HOME": str(cls.stage / "var" / "lib" / "vlmserve")}

    def test_staging_writes_nothing_into_the_libraries_it_reads(self):
        # Staged files are hard links to these (VLM_STAGE_LINK=1): a `cp` onto one rewrote the build
        # machine's libcudart in place, and tests running beside this one died with SIGSEGV (issue 7).
        after = libraries_staging_reads(Path(os.environ["VLM_BIN"]).resolve())
        changed = {path: (before, after.get(path)) for path, before in self.sources_before.items() if after.get(path) != before}
        self.assertTrue(self.sources_before)
        self.assertEqual(changed, {})

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

    def test_binary_searches_only_the_bundle(self):
        # The build tree's RUNPATH ends with an empty element: the loader would search the working
        # directory (the service user's writable /var/lib/vlmserve) for libraries.
        dynamic = subprocess.run(["readelf", "-d", str(self.binary)], capture_output=True, text=True, check=True).stdout
        paths = [line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines() if "(RUNPATH)" in line or "(RPATH)" in line]
        self.assertEqual(paths, ["$ORIGIN/../lib"])
        self.assertTrue((self.stage / "etc/ssl/certs/ca-certificates.crt").is_file(), "the CA bundle SSL_CERT_FILE names")

    def test_staged_binary_runs_with_an_empty_environment(self):
        version = subprocess.run([str(self.binary), "--version"], env=self.env, capture_output=True, text=True)
        self.assertEqual(version.returncode, 0, version.stderr)
        self.assertIn("libtorch", version.stdout)
        for command in ("serve", "pull"):
            helped = subprocess.run([str(self.binary), command, "--help"], env=self.env, capture_output=True, text=True)
            self.assertEqual(helped.returncode, 0, helped.stderr)
            self.assertIn("--offline", helped.stdout)


    def test_image_command_serves_and_its_healthcheck_probes_it(self):
        """The cpu stage's ENV, ENTRYPOINT + CMD and HEALTHCHECK, run against the bundle: paths under
        /opt and /var/lib are mapped into the stage folder, and the port is a free one."""
        export = DATA.parent / "yolov5n.torchscript"
        self.assertTrue(export.is_file(), f"{export} missing: the yolo_fixtures test makes it")
        stage_env, entrypoint, cmd, health = dockerfile_stage("cpu")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
        mapped = {"/opt/vlmserve": str(self.stage / "opt" / "vlmserve"), "/var/lib/vlmserve": str(self.stage / "var/lib/vlmserve")}

        def in_stage(value):
            for image_path, local in mapped.items():
                value = value.replace(image_path, local)
            return value

        env = {k: in_stage(v).replace("$PATH", "/usr/bin:/bin") for k, v in stage_env.items()}
        env.update(VLM_PORT=port, VLM_MODEL=f"yolo={export}")
        argv = [str(self.binary)] + [port if a == "8080" else a for a in cmd]
        self.assertEqual(entrypoint, ["vlmserve"])
        server = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            healthy = False
            for _ in range(240):
                if subprocess.run(health, env=env, capture_output=True, timeout=10).returncode == 0:
                    healthy = True
                    break
                self.assertIsNone(server.poll(), server.stdout.read() if server.poll() is not None else "")
                time.sleep(0.5)
            self.assertTrue(healthy, "HEALTHCHECK never passed")
            key = Path(env["VLM_AUDIT_KEY_FILE"])
            self.assertTrue(key.is_file())
            self.assertEqual(key.stat().st_mode & 0o777, 0o600)
            server.send_signal(signal.SIGTERM)
            self.assertEqual(server.wait(timeout=60), 0)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            server.stdout.close()
        self.assertNotEqual(subprocess.run(health, env=env, capture_output=True, timeout=10).returncode, 0)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.stage, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
