#!/usr/bin/env bash
# One-time (and idempotent) setup on Debian 12: system packages, the .venv holding the pinned torch
# wheel (our libtorch) and the test-only Python packages, and the current cpp-httplib header.
#   scripts/setup.sh            everything
#   VLM_SKIP_APT=1 scripts/setup.sh   when the packages are known to be there (containers, CI caches)
# Prints nothing when everything is already in place, so that scripts/run.sh shows only the answer.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VLM_VENV:-$root/.venv}"
fail() { echo "setup.sh: $*" >&2; exit 1; }
did_work=0

apt_packages=(
  build-essential cmake ninja-build ccache pkg-config git clang-format
  libopencv-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libssl-dev openssl libgtest-dev
  python3 python3-venv python3-dev dpkg-dev clang libclang-rt-14-dev
)

install_apt_packages() {
  local missing=()
  for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  did_work=1
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "setup.sh: installing ${missing[*]}"
  $sudo apt-get update -qq || fail "apt-get update failed: is the Debian archive reachable?"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || fail "apt-get install failed for: ${missing[*]}"
}

setup_venv() {
  if [[ ! -x "$venv/bin/python" ]]; then
    did_work=1
    python3 -m venv "$venv" || fail "cannot create $venv (is python3-venv installed?)"
  fi
  # The lock pins every package and its dependencies. --no-deps because the pinned yolov5 declares an
  # old huggingface-hub that the pinned transformers cannot use; the lock holds a set that works.
  if "$venv/bin/python" - "$root/scripts/requirements-test.lock" <<'PY'
import sys
from importlib import metadata
def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
pins = [line.strip().split("==") for line in open(sys.argv[1]) if "==" in line]
sys.exit(0 if all(version(name) == v for name, v in pins) else 1)
PY
  then
    return
  fi
  did_work=1
  echo "setup.sh: installing pinned Python packages into $venv (torch 2.11.0 brings libtorch and its CUDA 13 libraries)"
  "$venv/bin/python" -m pip install -q --upgrade pip || fail "pip upgrade failed: is the Python package index reachable?"
  "$venv/bin/python" -m pip install -q --no-deps -r "$root/scripts/requirements-test.lock" \
    || fail "pip install failed: is the Python package index reachable?"
}

check_cuda_match() {
  local torch_cuda nvcc_cuda
  # torch/version.py alone: importing torch takes seconds, and run.sh runs this before every command.
  torch_cuda="$("$venv/bin/python" -c 'import runpy, sysconfig
print(runpy.run_path(sysconfig.get_paths()["purelib"] + "/torch/version.py").get("cuda") or "")')"
  if [[ -x /usr/local/cuda/bin/nvcc || -n "$(command -v nvcc || true)" ]]; then
    local nvcc_bin="${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
    nvcc_cuda="$("$nvcc_bin" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
    if [[ -n "$torch_cuda" && "${torch_cuda%%.*}" != "${nvcc_cuda%%.*}" ]]; then
      fail "libtorch is built for CUDA $torch_cuda but nvcc is CUDA $nvcc_cuda: our kernels must use the same major version"
    fi
    [[ $did_work == 0 ]] || echo "setup.sh: libtorch CUDA $torch_cuda, nvcc CUDA $nvcc_cuda: CUDA kernels will be built"
  elif [[ $did_work == 1 ]]; then
    echo "setup.sh: no nvcc found: CPU-only build (libtorch CUDA ${torch_cuda:-none})"
  fi
}

[[ "${VLM_SKIP_APT:-0}" == 1 ]] || install_apt_packages
setup_venv
[[ -f "${VLM_DEPS_DIR:-$root/.deps}/cpp-httplib/httplib.h" ]] || did_work=1
check_cuda_match
"$root/scripts/fetch_cpp_httplib.sh"
[[ $did_work == 0 ]] || echo "setup.sh: done"
