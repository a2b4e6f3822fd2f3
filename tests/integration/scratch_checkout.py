"""A scratch checkout for tests that run the README's commands exactly as a user types them.

Laid out as a fresh clone: `repo/` with this tree's scripts/ and configs/ copied, the built tree
(.venv, .deps, build/auto) linked so nothing is rebuilt, and `../shared/assets` beside it. Commands
run there cannot write into the source tree. The environment has no network: every proxy variable
points at a closed port (loopback excepted) and YOLO_OFFLINE=1 (what ultralytics concludes itself when DNS fails).
"""

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASSETS = Path(os.environ["VLM_ASSETS"]).resolve()
BIN = Path(os.environ["VLM_BIN"]).resolve()
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused at once


def make(tmp, photos=("bus.jpg", "zidane.jpg")):
    """Builds the checkout under `tmp` and returns its root; `photos` go into repo/photos/."""
    (tmp / "shared").mkdir()
    (tmp / "shared" / "assets").symlink_to(ASSETS)
    repo = tmp / "repo"
    for folder in ("scripts", "configs"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in (".venv", ".deps"):
        (repo / name).symlink_to((ROOT / name).resolve())
    (repo / "build").mkdir()
    (repo / "build" / "auto").symlink_to(BIN.parents[1])
    (repo / "photos").mkdir()
    for name in photos:
        shutil.copy(ASSETS / "images" / name, repo / "photos" / name)
    return repo


def offline_env(**extra):
    """The caller's environment without VLM_* settings (a user has none), and with no network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLM_") or k == "VLM_SKIP_APT"}
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = UNREACHABLE
    env["no_proxy"] = env["NO_PROXY"] = "localhost,127.0.0.1"  # loopback is not the network
    env.update(YOLO_OFFLINE="1", HF_HUB_OFFLINE="1", **extra)
    return env
