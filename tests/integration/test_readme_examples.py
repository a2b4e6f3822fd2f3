"""Every ```sh example of README.md that runs on this machine, run as written against real servers.

Each fenced `sh` block is split into commands (a line ending in `\\` or `|` continues on the next; `#`
lines are expected output or comments). The commands run through bash, in README order, from a scratch
checkout with no network (scratch_checkout.py) that holds the README's photos (bus.jpg, photos/) and a
short clip.mp4 made from them. A
`vlmserve serve` line starts in the background and must answer /ready; the next lines talk to it; it is
stopped with SIGTERM at the end of its block and must exit 0. Any other command fails the test if it
exits non-zero; a curl command also fails if its answer is not JSON or is an error. The Getting models
block runs first: it creates models/yolov5n.torchscript, which configs/server.json serves.

Substitutions, the only changes made to what the README says:
  - the models the examples name are links in the scratch checkout (MODELS below) to test fixtures;
  - port 8080 becomes a free port: in the commands' text, and through VLM_PORT for the servers that
    listen on the default port or configs/server.json's (both 8080);
  - absolute system folders (SYSTEM_FOLDERS) move under a scratch root, HOME is a scratch folder
    with ~/.local/bin on PATH (as Debian's ~/.profile puts it once it exists);
  - REQUEST_OR_AUDIT_ID becomes the audit_id of the README's own /think request;
  - `scripts/debian_base.sh` and `buildah` run in this tree, the image's build context (the scratch
    checkout holds only scripts/ and configs/), after tests/deploy/test_container_image.py built the
    same layers (the cpu_image fixture), so they need no network.
Lines that cannot run here are skipped by the rules in SKIP, each printed with its reason.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ["VLM_TEST_DATA"])
sys.path.insert(0, str(Path(__file__).resolve().parent))
import scratch_checkout  # noqa: E402
from scratch_checkout import ASSETS, offline_env  # noqa: E402

MODELS = {  # name in the README -> fixture (tests/parity/yolo_fixtures.py, florence2_make_fixtures.py)
    "yolov5n.torchscript": DATA / "yolov5n.torchscript",  # the official YOLOv5n weights, exported
    "yolo11n.torchscript": DATA / "yolo11n.torchscript",  # YOLO11n architecture, random weights
    "yolov8n.torchscript": DATA / "yolov8n.torchscript",  # YOLOv8n architecture, random weights
    "models/yolo11n.torchscript": DATA / "yolo11n.torchscript",  # what run.sh's online export writes
    "Florence-2-base": DATA / "florence2" / "tasks_original",  # tiny Florence-2, Microsoft's layout, taught
}
SYSTEM_FOLDERS = ("/var/lib/vlmserve/", "/etc/vlmserve/", "/mnt/elsewhere/")
README_PORT = "8080"
SKIP = [
    (r"^docker\b", "needs Docker (tests/deploy check the Dockerfile and compose file)"),
    (r"^kubectl\b|<pod>", "needs a Kubernetes cluster"),
    (r"--device cuda", "needs a CUDA GPU (tools/gpu/run_all.sh)"),
    (r"hf://", "downloads from the Hugging Face hub (tests/hub run it against an emulator)"),
    (r"^scripts/test\.sh|^cmake --preset|^cmake --build|^ctest\b", "builds or tests this tree: what ran before this test"),
]
PHOTOS = ("bus.jpg", "zidane.jpg")
PYTHON_PREFIX = "#python\n"


def sh_blocks(readme):
    """[[command, ...], ...]: the commands of each ```sh block, in order. A ```python block right after
    a ```sh block is one more command of it, run by the tests' Python (which has the openai client)
    while that block's server still runs."""
    blocks = []
    for kind, body in re.findall(r"^```(sh|python)\n(.*?)^```", readme, re.S | re.M):
        if kind == "python":
            if blocks:
                blocks[-1].append(PYTHON_PREFIX + body)
            continue
        commands, current = [], []
        for line in body.splitlines():
            if not current and (not line.strip() or line.lstrip().startswith("#")):
                continue
            current.append(line)
            if not re.search(r"(\\|\|)\s*$", line):
                commands.append("\n".join(current))
                current = []
        blocks.append(commands)
    return blocks


def make_clip(path):
    """The README's clip.mp4: 20 frames at 10 fps from the photos, as a phone would hand over a short video."""
    import cv2
    frames = [cv2.resize(cv2.imread(str(ASSETS / "images" / name)), (640, 480)) for name in PHOTOS for _ in range(10)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for frame in frames:
        writer.write(frame)
    writer.release()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ReadmeExamples(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="vlm-readme-"))
        self.repo = scratch_checkout.make(self.tmp, PHOTOS)
        shutil.copy(ASSETS / "images" / "bus.jpg", self.repo / "bus.jpg")
        make_clip(self.repo / "clip.mp4")
        for name, target in MODELS.items():
            self.assertTrue(target.exists(), f"missing fixture {target}")
            (self.repo / name).parent.mkdir(exist_ok=True)
            (self.repo / name).symlink_to(target)
        self.port = str(free_port())
        config = json.loads((self.repo / "configs" / "server.json").read_text())
        self.assertEqual(config["port"], int(README_PORT), "configs/server.json and the curl examples disagree")
        self.scratch_root = self.tmp / "root"
        for folder in SYSTEM_FOLDERS:
            (self.scratch_root / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
        home = self.tmp / "home"
        home.mkdir()
        # VLM_PORT moves the servers that listen on the default port (8080) or the config file's.
        self.env = offline_env(HOME=str(home), PATH=f"{home}/.local/bin:{os.environ['PATH']}", VLM_PORT=self.port)
        self.audit_id = None
        self.server = None

    def tearDown(self):
        if self.server and self.server.poll() is None:
            self.server.kill()
            self.server.wait()
        shutil.rmtree(self.tmp)

    def substitute(self, command):
        command = command.replace(README_PORT, self.port)
        for folder in SYSTEM_FOLDERS:
            command = command.replace(folder, str(self.scratch_root) + folder)
        if "REQUEST_OR_AUDIT_ID" in command:
            # Without a /think answer the placeholder stays, and the command fails as it would for a user.
            command = command.replace("REQUEST_OR_AUDIT_ID", self.audit_id or "REQUEST_OR_AUDIT_ID")
        return command

    def server_log(self):
        return self.server_log_path.read_text(errors="replace")[-3000:]

    def start_server(self, command):
        self.server_log_path = self.tmp / f"server-{time.monotonic_ns()}.log"
        with open(self.server_log_path, "w") as log:
            self.server = subprocess.Popen(["bash", "-c", "exec " + command], cwd=self.repo, env=self.env,
                                           stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.server.poll() is not None:
                return f"exited {self.server.returncode}:\n{self.server_log()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return None
            except OSError:
                pass
            time.sleep(0.2)
        return f"not ready after 180 s:\n{self.server_log()}"

    def stop_server(self):
        self.server.send_signal(signal.SIGTERM)
        try:
            code = self.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.server.kill()
            code = "no exit 60 s after SIGTERM"
        self.server = None
        return None if code == 0 else f"server stopped with {code}:\n{self.server_log()}"

    def run_command(self, command):
        """None when the command did what the README says, else what went wrong."""
        in_tree = re.match(r"(scripts/debian_base\.sh|buildah)\b", command) is not None
        argv = [sys.executable, "-c", command] if command.startswith(PYTHON_PREFIX) else ["bash", "-c", command]
        proc = subprocess.run(argv, cwd=ROOT if in_tree else self.repo, env=self.env,
                              capture_output=True, text=True, timeout=600)
        shown = proc.stdout[-1500:] + proc.stderr[-1500:]
        if proc.returncode != 0:
            return f"exit {proc.returncode}:\n{shown}"
        if re.search(r"\bcurl\b", command):
            try:
                answer = json.loads(proc.stdout)
            except json.JSONDecodeError:
                return f"curl answer is not JSON:\n{shown}"
            if "error" in answer:
                return f"error answer:\n{shown}"
            if "/think" in command:
                self.audit_id = answer.get("audit_id")
        print(proc.stdout[:300].rstrip())
        return None

    def test_every_local_example_runs_as_written(self):
        blocks = sh_blocks((ROOT / "README.md").read_text())
        # The Getting models block creates the model that configs/server.json names: run it first.
        blocks.sort(key=lambda block: not any(c.startswith("scripts/export_yolo.sh") for c in block))
        failures, ran, skipped = [], [], []
        for block in blocks:
            for command in block:
                rule = next((reason for pattern, reason in SKIP if re.search(pattern, command, re.M)), None)
                if rule:
                    skipped.append(command)
                    print(f"SKIP ({rule}): {command}")
                    continue
                command = self.substitute(command)
                print(f"$ {command}", flush=True)
                started = time.time()
                if re.match(r"(\S+=\S+ )*vlmserve serve\b", command):
                    if self.server:
                        problem = self.stop_server()
                        if problem:
                            failures.append(("(previous server)", problem))
                    problem = self.start_server(command)
                else:
                    problem = self.run_command(command)
                ran.append(command)
                print(f"({time.time() - started:.1f} s)")
                if problem:
                    print(f"FAILED: {problem}")
                    failures.append((command, problem))
            if self.server:
                problem = self.stop_server()
                if problem:
                    failures.append(("(server of the block above)", problem))
        print(f"{len(ran)} examples run, {len(skipped)} skipped, {len(failures)} failed")
        # The extraction itself must have found the examples this test exists for.
        for kind in (r"^vlmserve detect", r"^vlmserve serve", r"\bcurl\b.*/detect", r"\bcurl\b.*/think",
                     r"^vlmserve think", r"^vlmserve audit verify", r"^vlmserve audit find", r"^scripts/run\.sh",
                     r"^scripts/export_yolo\.sh", r"^cmake --install", r"--config configs/server\.json",
                     r"\bcurl\b.*/v1/chat/completions", r"^#python\n[\s\S]*chat\.completions\.create",
                     r"^scripts/debian_base\.sh", r"^buildah bud [^#]*--target cpu"):
            self.assertTrue(any(re.search(kind, c, re.M) for c in ran), f"no example matching {kind} was run")
        self.assertEqual(failures, [], "\n\n".join(f"{c}\n  -> {p}" for c, p in failures))


if __name__ == "__main__":
    unittest.main()
