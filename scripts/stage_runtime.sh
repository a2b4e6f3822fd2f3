#!/usr/bin/env bash
# Stages what the vlmserve binary needs at run time under STAGE_DIR, laid out for the Docker runtime
# stage to copy to / as is (no package installs there):
#   opt/vlmserve/bin/vlmserve (RUNPATH $ORIGIN/../lib, nothing else), opt/vlmserve/lib/*.so*,
#   var/lib/vlmserve/{models,audit,keys}, etc/vlmserve/.
# The libraries are what the loader resolves for the binary (ldd) plus, for a binary that links
# libtorch_cuda, the ones libtorch and cuDNN open with dlopen (listed below). A CPU-only binary
# (VLM_WITH_CUDA=OFF) gets its ldd closure alone: no CUDA library but the two libtorch_cpu.so links.
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
# hf:// downloads verify TLS against the system's CA bundle (the image sets SSL_CERT_FILE to it).
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[[ -f "$ca_bundle" ]] || { echo "stage_runtime.sh: no CA bundle at $ca_bundle; install ca-certificates" >&2; exit 1; }
mkdir -p "$stage/etc/ssl/certs"
cp -L "$ca_bundle" "$stage/etc/ssl/certs/ca-certificates.crt"
cp "$binary" "$stage/opt/vlmserve/bin/vlmserve"
# The build tree's RUNPATH names the build machine's folders and ends with an empty element, which
# makes the loader search the working directory: the bundle's binary looks in its own lib folder only.
patchelf --set-rpath '$ORIGIN/../lib' "$stage/opt/vlmserve/bin/vlmserve"

# From the base image, or the driver: never bundled.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|librt\.so|libpthread\.so|libresolv\.so|libutil\.so|libcuda\.so|libnvidia-)'
put_closure() {  # put_closure FILE: every library the loader resolves for FILE, FILE itself if it is one
  local name arrow path rest
  while read -r name arrow path rest; do
    [[ "$arrow" == "=>" ]] || continue
    [[ "$name" =~ $skip ]] && continue
    if [[ "$path" == "not" ]]; then echo "stage_runtime.sh: $name (needed by $1) not found by the loader" >&2; return 1; fi
    put "$path"
  done < <(ldd "$1")
}
put_closure "$binary"

# libtorch_cuda and cuDNN open these with dlopen, which ldd cannot see: cuDNN's engine sub-libraries,
# NVRTC and its builtins and nvJitLink (kernels compiled at run time), torch's CUDA linear algebra
# (with cuSOLVER, which only it links). Left out: torch's Python-only libraries and NVSHMEM's
# multi-node bootstrap and transport plugins.
dlopened='^(libcudnn_[a-z_]+\.so\.[0-9]+|libnvrtc(-builtins)?\.so\.[0-9.]+|libnvJitLink\.so\.[0-9]+|libtorch_cuda_linalg\.so|libcaffe2_nvrtc\.so)$'
torch_lib="$(ldd "$binary" | awk '/libtorch_cuda\.so/ {print $3}' | xargs -r dirname)"
if [[ -n "$torch_lib" ]]; then
  site_packages="$(cd "$torch_lib/../.." && pwd)"
  for lib in "$torch_lib"/*.so* "$site_packages"/nvidia/*/lib/*.so*; do
    if [[ -e "$lib" && "$(basename "$lib")" =~ $dlopened ]]; then
      put "$lib"
      put_closure "$lib"
    fi
  done
fi
echo "staged $(du -sh "$stage" | cut -f1) in $stage ($(ls "$stage/opt/vlmserve/lib" | wc -l) libraries)"
