#!/usr/bin/env bash
# Idempotent setup on Debian 12: system packages, the .venv holding the pinned torch wheel (our
# libtorch), the CUDA 13 compiler toolchain from the Python package index when the machine has no CUDA
# toolkit, and the pinned cpp-httplib header.
#   scripts/setup.sh             development and CI: everything, the test-only Python packages included
#   scripts/setup.sh build-cpu   an image build of the cpu target: only what compiling vlmserve needs
#   scripts/setup.sh build-gpu   the same for the gpu target (torch's CUDA libraries too)
#   VLM_SKIP_APT=1 scripts/setup.sh   when the packages are known to be there (CI caches)
# Prints nothing when everything is already in place, so that scripts/run.sh shows only the answer.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VLM_VENV:-$root/.venv}"
mode="${1:-dev}"
fail() { echo "setup.sh: $*" >&2; exit 1; }
did_work=0

build_packages=(
  build-essential cmake ninja-build ccache pkg-config patchelf ca-certificates
  libopencv-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libssl-dev
  python3 python3-venv
)
# Formatting, sanitizers, the Python tests, the container image test (buildah from a debootstrapped
# Debian base), the results page test (headless chromium), the overload probe's load generator (wrk) and
# Prometheus' linter for /metrics (promtool, in the prometheus package).
dev_packages=(git clang-format openssl libgtest-dev python3-dev dpkg-dev clang libclang-rt-14-dev buildah debootstrap
  chromium wrk prometheus)
# The lock pins every Python package; an image build takes only the wheels compiling needs: torch
# (libtorch and its CMake files) and, for cpu, the two CUDA libraries libtorch_cpu.so itself links
# (libcudart, libcupti); for gpu, every nvidia-* library libtorch_cuda.so links.
lock="$root/scripts/requirements-test.lock"
toolchain_lock="$root/scripts/requirements-cuda-toolchain.lock"
case "$mode" in
  dev) apt_packages=("${build_packages[@]}" "${dev_packages[@]}"); wheel_pattern='.' ;;
  build-cpu) apt_packages=("${build_packages[@]}"); wheel_pattern='^(torch|nvidia-cuda-runtime|nvidia-cuda-cupti)==' ;;
  build-gpu) apt_packages=("${build_packages[@]}"); wheel_pattern='^(torch|nvidia-[a-z0-9-]+)==' ;;
  *) fail "unknown mode '$mode' (expected build-cpu, build-gpu or nothing)" ;;
esac

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

pins_installed() {  # pins_installed REQUIREMENTS_FILE: every name==version in it is installed in the venv
  "$venv/bin/python" - "$1" <<'PY'
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
}

pip_install_pins() {  # pip_install_pins REQUIREMENTS_FILE WHAT
  pins_installed "$1" && return
  did_work=1
  # pip in a venv trusts only its own copy of the public CAs; the system's bundle also holds the CAs
  # this machine adds (a TLS-inspecting proxy's, say), which apt and everything else already trust.
  if [[ -z "${PIP_CERT:-}" && -f /etc/ssl/certs/ca-certificates.crt ]]; then export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; fi
  echo "setup.sh: installing $2 into $venv"
  "$venv/bin/python" -m pip install -q --upgrade pip || fail "pip upgrade failed: is the Python package index reachable?"
  # --no-deps because the pinned yolov5 declares an old huggingface-hub that the pinned transformers
  # cannot use; the lock holds a set that works.
  "$venv/bin/python" -m pip install -q --no-deps --no-cache-dir -r "$1" \
    || fail "pip install failed: is the Python package index reachable?"
}

setup_venv() {
  if [[ ! -x "$venv/bin/python" ]]; then
    did_work=1
    python3 -m venv "$venv" || fail "cannot create $venv (is python3-venv installed?)"
  fi
  if [[ "$mode" == dev ]]; then
    pip_install_pins "$lock" "the pinned Python packages (torch 2.11.0 brings libtorch and its CUDA 13 libraries)"
  else
    local selected="$venv/requirements-$mode.txt"
    grep -E "$wheel_pattern" "$lock" | grep -v '^nvidia-ml-py' > "$selected"
    pip_install_pins "$selected" "torch 2.11.0 and the CUDA libraries the $mode link needs"
  fi
}

site_packages() {
  "$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

system_nvcc() {
  if [[ -n "${CUDACXX:-}" ]]; then echo "$CUDACXX"
  elif command -v nvcc >/dev/null; then command -v nvcc
  elif [[ -x /usr/local/cuda/bin/nvcc ]]; then echo /usr/local/cuda/bin/nvcc
  fi
}

# libtorch's CMake package needs a CUDA 13 toolkit even to build without CUDA kernels (the wheel is a
# CUDA build). Without a system toolkit, the compiler wheels (nvcc, its headers, NVVM, CCCL) join the
# CUDA libraries the torch wheel already brings under nvidia/cu13; CMake takes that folder as the
# toolkit (cmake/VlmDependencies.cmake). The wheels ship only versioned libraries (libcudart.so.13);
# the unversioned names the linker and CMake's FindCUDAToolkit look for are added beside them, and
# lib64, where nvcc itself looks for its runtime (libcudart_static.a, libcudadevrt.a).
setup_cuda_toolchain() {
  [[ -z "$(system_nvcc)" ]] || return 0
  pip_install_pins "$toolchain_lock" "the CUDA 13 compiler toolchain (no system CUDA toolkit found)"
  local toolkit lib
  toolkit="$(site_packages)/nvidia/cu13"
  [[ -e "$toolkit/lib64" ]] || ln -s lib "$toolkit/lib64"
  for lib in "$toolkit"/lib/lib*.so.*; do
    local unversioned="${lib%%.so.*}.so"
    [[ -e "$unversioned" ]] || ln -s "$(basename "$lib")" "$unversioned"
  done
}

check_cuda_match() {
  local torch_cuda nvcc_cuda nvcc_bin
  # torch/version.py alone: importing torch takes seconds, and run.sh runs this before every command.
  torch_cuda="$("$venv/bin/python" -c 'import runpy, sysconfig
print(runpy.run_path(sysconfig.get_paths()["purelib"] + "/torch/version.py").get("cuda") or "")')"
  nvcc_bin="$(system_nvcc)"
  [[ -n "$nvcc_bin" ]] || nvcc_bin="$(site_packages)/nvidia/cu13/bin/nvcc"
  [[ -x "$nvcc_bin" ]] || fail "no nvcc at $nvcc_bin: libtorch's CMake package needs the CUDA $torch_cuda toolkit"
  nvcc_cuda="$("$nvcc_bin" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
  if [[ -n "$torch_cuda" && "${torch_cuda%%.*}" != "${nvcc_cuda%%.*}" ]]; then
    fail "libtorch is built for CUDA $torch_cuda but nvcc ($nvcc_bin) is CUDA $nvcc_cuda: our kernels must use the same major version"
  fi
  [[ $did_work == 0 ]] || echo "setup.sh: libtorch CUDA $torch_cuda, nvcc CUDA $nvcc_cuda ($nvcc_bin)"
}

[[ "${VLM_SKIP_APT:-0}" == 1 ]] || install_apt_packages
setup_venv
setup_cuda_toolchain
[[ -f "${VLM_DEPS_DIR:-$root/.deps}/cpp-httplib/httplib.h" ]] || did_work=1
check_cuda_match
"$root/scripts/fetch_cpp_httplib.sh"
[[ $did_work == 0 ]] || echo "setup.sh: done"
