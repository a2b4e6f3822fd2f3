#!/usr/bin/env bash
# Stages what the vlmserve binary needs at run time under STAGE_DIR, laid out for the Docker runtime
# stage to copy to / as is (no package installs there):
#   opt/vlmserve/bin/vlmserve, opt/vlmserve/lib/*.so* (libtorch, the CUDA libraries its wheel brings,
#   OpenCV, spdlog, ...), var/lib/vlmserve/{models,audit,keys}, etc/vlmserve/.
# Only the C library and the dynamic loader (from the runtime base image) and the NVIDIA driver
# (injected by the container toolkit) are left out. tests/deploy runs this in CI and starts the staged
# binary with an empty environment to prove the bundle is complete.
#   scripts/stage_runtime.sh BUILD_DIR STAGE_DIR
#   VLM_STAGE_LINK=1: hard-link instead of copying where the filesystem allows (CI: saves ~4 GB).
set -euo pipefail

put() {  # put SOURCE into the bundle's lib folder, following symlinks; a later library of a name replaces an earlier one
  local dest="$stage/opt/vlmserve/lib/$(basename "$1")"
  # Replace a staged file, never write into it: with VLM_STAGE_LINK=1 it can be a hard link to the build
  # machine's own library (libcudart.so.13 comes from /usr/local/cuda through ldd, then again from the
  # torch wheel's nvidia/cu13), and `cp` onto it truncated and rewrote that library in place under every
  # process that had it mapped: tests running beside this one died with SIGSEGV or SIGBUS (issue 7).
  rm -f "$dest"
  if [[ "${VLM_STAGE_LINK:-0}" == 1 ]] && cp -L -l "$1" "$dest" 2>/dev/null; then return; fi
  cp -L "$1" "$dest"
}

build_dir="${1:?usage: stage_runtime.sh BUILD_DIR STAGE_DIR}"
stage="${2:?usage: stage_runtime.sh BUILD_DIR STAGE_DIR}"
binary="$build_dir/cli/vlmserve"
[[ -x "$binary" ]] || { echo "stage_runtime.sh: no vlmserve binary at $binary; run scripts/build.sh PRESET vlmserve first" >&2; exit 1; }

rm -rf "$stage"
mkdir -p "$stage/opt/vlmserve/bin" "$stage/opt/vlmserve/lib" "$stage/var/lib/vlmserve/models" \
         "$stage/var/lib/vlmserve/audit" "$stage/var/lib/vlmserve/keys" "$stage/etc/vlmserve"
cp "$binary" "$stage/opt/vlmserve/bin/vlmserve"

# From the base image, or the driver: never bundled.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|librt\.so|libpthread\.so|libresolv\.so|libutil\.so|libcuda\.so|libnvidia-)'
missing=0
while read -r name arrow path _; do
  [[ "$arrow" == "=>" ]] || continue
  if [[ "$path" == "not" ]]; then echo "stage_runtime.sh: $name not found by the loader" >&2; missing=1; continue; fi
  [[ "$name" =~ $skip ]] && continue
  put "$path"
done < <(ldd "$binary")
[[ $missing == 0 ]] || exit 1

# libtorch and cuDNN open some libraries with dlopen (cuDNN engine sub-libraries, NVRTC, nvJitLink),
# which ldd cannot see: take every library of the torch wheel and of the nvidia-* wheels it uses.
torch_lib="$(ldd "$binary" | awk '/libc10\.so/ {print $3}' | xargs -r dirname)"
if [[ -n "$torch_lib" ]]; then
  for lib in "$torch_lib"/*.so*; do put "$lib"; done
  site_packages="$(cd "$torch_lib/../.." && pwd)"
  for lib in "$site_packages"/nvidia/*/lib/*.so*; do
    if [[ -e "$lib" ]]; then put "$lib"; fi
  done
fi
echo "staged $(du -sh "$stage" | cut -f1) in $stage ($(ls "$stage/opt/vlmserve/lib" | wc -l) libraries)"
