"""Builds docker/Dockerfile's targets with buildah and runs the images as a container engine would,
for machines without one (CI). Shared by tests/deploy/test_container_image*.py.

Building: scripts/debian_base.sh makes the Debian 12 base with debootstrap, then
`buildah bud --isolation chroot --format docker` builds a target under the tag docker/compose.yaml
names for it (the docker format keeps HEALTHCHECK). Layers stay in buildah's storage and ccache in
its cache mount, so a later build redoes only what changed.

Running: the image's own config (Entrypoint, Cmd, Env, User, WorkingDir, Healthcheck, Volumes, from
`buildah inspect`) in a private mount namespace, chrooted into the image with its root filesystem
read-only, /tmp a tmpfs and each declared volume a host folder owned by the image's user: how
compose (read_only: true) and deploy/k8s (readOnlyRootFilesystem) run it. The network is the host's,
so the server is reached on loopback."""

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/debian:12-slim"

# Mounts the image read-only and execs the command as the image's user: run with `unshare --mount`,
# so that every mount here disappears with the process.
RUNNER = r"""
set -e
root=$1; user=$2; workdir=$3; shift 3
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
while [ "$1" != "--" ]; do
  mount --bind "${1%%=*}" "$root${1#*=}"
  shift
done
shift
exec chroot --userspec="$user" "$root" /usr/bin/env -i -C "$workdir" "$@"
"""


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(argv, **kw)


def compose_service(name):
    """(image tag, Dockerfile target) of a docker/compose.yaml service."""
    service = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"][name]
    return service["image"], service["build"]["target"]


def build(target, tag):
    """Builds TARGET as TAG (buildah's storage names it localhost/TAG); returns (seconds, build log)."""
    if os.geteuid() != 0:
        raise AssertionError("building and running images with buildah and chroot needs root")
    base = run(["bash", str(ROOT / "scripts" / "debian_base.sh"), BASE_IMAGE])
    if base.returncode != 0:
        raise AssertionError(f"scripts/debian_base.sh failed:\n{base.stdout[-3000:]}\n{base.stderr[-3000:]}")
    started = time.monotonic()
    result = run(["nice", "-n", "10", "buildah", "bud", "--isolation", "chroot", "--format", "docker", "--layers",
                  "--pull-never", "--build-arg", f"DEBIAN_IMAGE={BASE_IMAGE}", "--target", target, "--tag", tag,
                  "--file", str(ROOT / "docker" / "Dockerfile"),
                  "--ignorefile", str(ROOT / "docker" / "Dockerfile.dockerignore"), str(ROOT)],
                 capture_output=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    took = time.monotonic() - started
    if result.returncode != 0:
        raise AssertionError(f"buildah bud --target {target} failed after {took:.0f} s:\n{result.stdout[-6000:]}")
    return took, result.stdout


def built_service(service, data, prefix):
    """The compose service's image built (cached layers reused) and a container for it whose volumes
    live in a new scratch folder under DATA: (tag, scratch folder, Container)."""
    tag, target = compose_service(service)
    took, _ = build(target, tag)
    print(f"built {tag} (target {target}) in {took:.0f} s")
    work = Path(tempfile.mkdtemp(dir=data, prefix=prefix))
    os.chmod(work, 0o755)
    return tag, work, Container(tag, work / "volumes")


def image_size(tag):
    """Bytes the image's layers take unpacked (the size `docker images` reports)."""
    return sum(size for size, _ in layer_list(tag))


def layer_list(tag):
    """[(unpacked bytes, step that made it)] for each layer, base first: sizes from buildah's storage
    (docker format history carries none), steps from the image's history."""
    store = json.loads(run(["buildah", "info"], check=True).stdout)["store"]
    driver = Path(store["GraphRoot"])
    images = json.loads((driver / f"{store['GraphDriverName']}-images" / "images.json").read_text())
    layers = {layer["id"]: layer for layer in
              json.loads((driver / f"{store['GraphDriverName']}-layers" / "layers.json").read_text())}
    top = next(image["layer"] for image in images if f"localhost/{tag}" in (image.get("names") or []))
    sizes = []
    while top:
        sizes.append(layers[top].get("diff-size", 0))
        top = layers[top].get("parent")
    config = json.loads(run(["buildah", "inspect", "--type", "image", f"localhost/{tag}"], check=True).stdout)
    steps = [h.get("created_by", "") for h in config["Docker"].get("history", []) if not h.get("empty_layer")]
    steps = ["(base image)"] * (len(sizes) - len(steps)) + steps
    return list(zip(reversed(sizes), steps))


class Container:
    """A working container of an image, its root filesystem mounted for the runner."""

    def __init__(self, tag, volume_root):
        inspected = json.loads(run(["buildah", "inspect", "--type", "image", f"localhost/{tag}"], check=True).stdout)
        self.config = inspected["Docker"]["config"]
        self.name = run(["buildah", "from", "--pull-never", f"localhost/{tag}"], check=True).stdout.strip().splitlines()[-1]
        self.root = run(["buildah", "mount", self.name], check=True).stdout.strip()
        self.user = self.config.get("User") or "0:0"
        uid, gid = (int(x) for x in self.user.split(":"))
        # Fresh named volumes take the image folder's owner; host folders stand in for them.
        self.volumes = {}
        for target in sorted(self.config.get("Volumes") or {}):
            host = Path(volume_root) / target.strip("/").replace("/", "_")
            host.mkdir(parents=True, exist_ok=True)
            os.chown(host, uid, gid)
            self.volumes[target] = host

    def env(self, **overrides):
        env = dict(item.split("=", 1) for item in self.config.get("Env") or [])
        env.update({k: v for k, v in overrides.items() if v is not None})
        for k in [k for k, v in overrides.items() if v is None]:
            env.pop(k, None)
        return env

    def argv(self, env, command, binds=None):
        mounts = [f"{host}={target}" for target, host in {**self.volumes, **(binds or {})}.items()]
        pairs = [f"{k}={v}" for k, v in env.items()]
        return (["unshare", "--mount", "--propagation", "private", "sh", "-c", RUNNER, "runner", self.root, self.user,
                 self.config.get("WorkingDir") or "/"] + mounts + ["--"] + pairs + list(command))

    def default_command(self):
        return (self.config.get("Entrypoint") or []) + (self.config.get("Cmd") or [])

    def start(self, env, command=None, binds=None):
        return subprocess.Popen(self.argv(env, command or self.default_command(), binds),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def exec(self, env, command, binds=None, timeout=300):
        return run(self.argv(env, command, binds), timeout=timeout)

    def healthcheck(self, env):
        """Runs the image's HEALTHCHECK command (CMD form) in the container; True when it exits 0."""
        test = self.config["Healthcheck"]["Test"]
        assert test[0] == "CMD", test
        return self.exec(env, test[1:], timeout=30).returncode == 0

    def remove(self):
        run(["buildah", "umount", self.name])
        run(["buildah", "rm", self.name])
