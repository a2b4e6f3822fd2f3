#!/usr/bin/env bash
# Assembles .gpu-deps/ (ignored; carried to the GPU machine with `run carry: [".gpu-deps"]`) so that
# tools/gpu/run_all.sh can run our CUDA build of vlmserve there. The GPU machine (Ubuntu 24.04) has
# nvcc, cmake and the torch 2.11.0+cu130 wheel but no OpenCV/spdlog/fmt packages, no apt and no network,
# so the binary is built here (Debian 12, glibc 2.36; it runs on the newer glibc/libstdc++ there) and
# travels with the libraries it needs:
#   .gpu-deps/bin/vlmserve          the CUDA build (default build/auto; VLM_GPU_BUILD_DIR overrides)
#   .gpu-deps/bin/letterbox_batch_check, nvjpeg_decode_check, add_layer_norm_check, greedy_select_check,
#                                   linear_check, flash_attention_check: the GPU checks of our device ops
#                                   (tests/gpu), when built
#   .gpu-deps/assets/jpeg_variants/ grayscale, CMYK, EXIF-rotated, progressive JPEGs for nvjpeg_decode_check
#                                   and tests/gpu/test_server_nvjpeg.py
#   .gpu-deps/lib/                  its non-system libraries, except libtorch/c10/CUDA (taken from the
#                                   GPU machine's own torch wheel, the same 2.11.0+cu130), and stubs
#   .gpu-deps/fixtures/             YOLO parity fixtures (TorchScript exports + reference detections)
#   .gpu-deps/assets/images/        the photos the references were computed on (../shared does not travel)
#   .f2-bench/                      for tools/gpu/florence2_bench.sh and florence2_parity.sh, when built:
#                                   bench_florence2 and florence2_parity_test (their libraries are in
#                                   .gpu-deps/lib) and the Florence-2-base
#                                   config/tokenizer files the checkpoint builder reads
#                                   (tests/parity/florence2_make_fixtures.py); outside .gpu-deps so that
#                                   run_all.sh's carry does not grow
#   .gpu-deps/MANIFEST.txt          what is in the bundle, with sizes
# Everything travels uncompressed; the whole tree plus carried paths must stay under the 64 MiB limit.
#   tools/gpu/prepare_carry.sh            (re-running replaces .gpu-deps/)
#   tools/gpu/prepare_carry.sh --python-reference-only
#       makes only .pyref/: the pure-Python yolov5 and ultralytics packages from .venv (the GPU
#       machine has torch, opencv and their other dependencies) for the server benchmark's Python
#       reference; carried in a call of its own, as bundle + .pyref exceed 64 MiB
#   tools/gpu/prepare_carry.sh --florence2-reference-only
#       puts the pinned transformers wheel (the version in .venv) in .whl/ for tools/gpu/florence2_bench.sh;
#       the GPU machine's tokenizers, huggingface_hub and safetensors satisfy its requirements
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

if [[ "${1:-}" == --python-reference-only ]]; then
  site="$("${VLM_PYTHON:-$root/.venv/bin/python}" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  rm -rf "$root/.pyref" && mkdir "$root/.pyref"
  for package in yolov5 ultralytics thop; do cp -r "$site/$package" "$root/.pyref/"; done
  find "$root/.pyref" -name __pycache__ -prune -exec rm -rf {} +
  echo ".pyref: $(du -sh "$root/.pyref" | cut -f1) (yolov5, ultralytics, thop)"
  exit 0
fi

if [[ "${1:-}" == --florence2-reference-only ]]; then
  python="${VLM_PYTHON:-$root/.venv/bin/python}"
  version="$("$python" -c 'import transformers; print(transformers.__version__)')"
  rm -f "$root"/.whl/transformers-*.whl
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d "$root/.whl" "transformers==$version"
  echo ".whl: $(du -sh "$root"/.whl/transformers-*.whl | cut -f1) (transformers $version)"
  exit 0
fi

build_dir="${VLM_GPU_BUILD_DIR:-build/auto}"
binary="$build_dir/cli/vlmserve"
python="${VLM_PYTHON:-$root/.venv/bin/python}"
assets="${VLM_ASSETS:-$root/../shared/assets}"
assets="$(cd "$assets" && pwd)"
fixtures="${VLM_GPU_FIXTURES:-$root/build-gpu/test-data}"
bundle="$root/.gpu-deps"
scratch="$root/build-gpu/stubs"
max_bundle_mib="${VLM_GPU_MAX_BUNDLE_MIB:-40}"

[[ -x "$binary" ]] || { echo "prepare_carry.sh: no vlmserve at $binary; build it: cmake --preset auto && cmake --build build/auto --target vlmserve" >&2; exit 1; }
[[ "$(ldd "$binary")" == *libtorch_cuda.so* ]] || { echo "prepare_carry.sh: $binary is not a CUDA build (no libtorch_cuda.so)" >&2; exit 1; }

# Linked by OpenCV but never called by vlmserve, and together with what only they pull in (poppler,
# HDF5, netCDF, PROJ, GEOS, xerces, ICU data, x265, libaom, X11, gfortran, ...) about 150 MB: replaced by
# stubs (tools/gpu/stub_library.py) whose functions abort with the symbol's name if ever called.
# Why never called (OpenCV 4.6, modules/imgcodecs/src/loadsave.cpp and grfmt_*.cpp): imgcodecs asks
# every registered decoder's checkSignature() (pure byte comparisons) and only the matching decoder
# reads; vlmserve decodes through cv::imdecode and encodes through cv::imwrite(.jpg/.png) only.
#  - libgdal: only GdalDecoder uses it (readHeader/readData/close), and it is only selected by
#    imread(..., IMREAD_LOAD_GDAL), which vlmserve never passes. Debian's 4.6 build does not register it
#    among the default decoders: a GDAL call would show up as an abort in the photo decode checks below.
#  - libgdcmMSFF/libgdcmDSED (DICOM): DICOMDecoder's constructor only sets its 128-byte+"DICM"
#    signature; gdcm::ImageReader is only touched in readHeader/readData of a file with that signature.
#  - libOpenEXR: ExrDecoder/ExrEncoder constructors only set fields; Imf is only touched when reading a
#    file with the EXR magic 76 2f 31 01 (and 4.6 refuses even that unless OPENCV_IO_ENABLE_OPENEXR is
#    set) or writing .exr.
#  - libGLX (and libGLdispatch, X11, xcb below it): opencv_core only calls glXGetProcAddressARB /
#    glXGetCurrentContext / glXGetCurrentDisplay from the cv::ogl interop functions (OpenGL buffers and
#    OpenCL-GL sharing), which vlmserve never calls; no OpenGL context exists there anyway.
#  - liblapack/libblas (and libgfortran/libquadmath): opencv_core's HAL calls them from cv::solve,
#    invert, SVD, eigen, QR/LU/Cholesky and cv::gemm, and only for matrices beyond its small-matrix
#    thresholds; vlmserve uses imdecode, cvtColor, resize, copyMakeBorder, rectangle/putText, imwrite.
#  - libopencv_videoio (and FFmpeg, GStreamer, libgphoto2, libdc1394 and the codecs below them, about
#    95 MB): only `vlmserve detect` given a video file opens a cv::VideoCapture / cv::VideoWriter, and
#    the GPU runs (run_all.sh, florence2_bench.sh) give images only.
stub_sonames=(libgdal.so.32 libgdcmMSFF.so.3.0 libgdcmDSED.so.3.0 libOpenEXR-3_1.so.30 libGLX.so.0
              liblapack.so.3 libblas.so.3 libopencv_videoio.so.406)
# Present on every glibc system (the GPU machine's are newer: glibc 2.39, GCC 14's libstdc++).
system_re='^(linux-vdso\.so|ld-linux-x86-64\.so|libc\.so|libm\.so|libdl\.so|librt\.so|libpthread\.so|libresolv\.so|libutil\.so|libstdc\+\+\.so|libgcc_s\.so)'
# From the GPU machine's torch wheel (its torch/lib and nvidia/*/lib), and the driver's libcuda.
torch_re='^(libtorch|libc10|libcudart\.so|libcuda\.so|libnvidia-|libcudnn|libcublas|libnccl|libnvshmem|libcusparse|libcufft|libcurand|libcusolver|libnvJitLink|libnvrtc|libcupti|libgomp)'

rm -rf "$bundle" "$scratch"
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/fixtures" "$bundle/assets" "$scratch"
cp "$binary" "$bundle/bin/vlmserve"
binaries=("$bundle/bin/vlmserve")
# VLM_GPU_BEFORE_BINARY: an earlier commit's CUDA vlmserve, benchmarked beside this one in the same
# call (run_all.sh bench cases that start with "before"); its libraries join the walk below.
if [[ -n "${VLM_GPU_BEFORE_BINARY:-}" ]]; then
  [[ "$(ldd "$VLM_GPU_BEFORE_BINARY")" == *libtorch_cuda.so* ]] ||
    { echo "prepare_carry.sh: $VLM_GPU_BEFORE_BINARY is not a CUDA build of vlmserve" >&2; exit 1; }
  cp "$VLM_GPU_BEFORE_BINARY" "$bundle/bin/vlmserve-before"
  binaries+=("$bundle/bin/vlmserve-before")
fi
# The GPU image-path checks run_all.sh runs: the device letterbox and nvJPEG decoding against OpenCV
# (tests/gpu/letterbox_batch_check.cpp, nvjpeg_decode_check.cpp; the latter only where CMake found
# nvJPEG). Where it did, vlmserve links libnvjpeg too (request JPEGs decoded on the GPU), so the
# library travels in lib/ (libnvjpeg.so.13, 5.6 MiB): with the yolov5n fixture alone the carry was
# 40.8 MiB + 2.1 MiB of working tree, of 64.
for check in letterbox_batch_check nvjpeg_decode_check add_layer_norm_check greedy_select_check linear_check \
  flash_attention_check; do
  if [[ -x "$build_dir/tests/gpu/$check" ]]; then
    cp "$build_dir/tests/gpu/$check" "$bundle/bin/"
    binaries+=("$bundle/bin/$check")
  else
    echo "prepare_carry.sh: no $build_dir/tests/gpu/$check; run_all.sh will skip it" >&2
  fi
done
f2="$root/.f2-bench"
rm -rf "$f2"
# Each Florence-2 binary and the device script that runs it.
for entry in bench/florence2/bench_florence2:florence2_bench.sh tests/parity/florence2_parity_test:florence2_parity.sh; do
  built="$build_dir/${entry%%:*}"
  if [[ -x "$built" ]]; then
    mkdir -p "$f2/bin"
    cp "$built" "$f2/bin/"
    binaries+=("$f2/bin/$(basename "$built")")
  else
    echo "prepare_carry.sh: no $built; tools/gpu/${entry##*:} will not run" >&2
  fi
done

# Where this machine's loader finds each library (each binary's RUNPATH included).
declare -A where
for b in "${binaries[@]}"; do
  while read -r name arrow path _; do
    [[ "$arrow" == "=>" && "$path" == /* ]] && where[$name]="$path"
  done < <(ldd "$b")
done

needed() { readelf -d -W "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
is_stub() { local s; for s in "${stub_sonames[@]}"; do [[ "$1" == "$s" ]] && return 0; done; return 1; }

# Walk NEEDED from the binary, stopping at system, torch and stubbed libraries: what lies only behind a
# stub is left out.
declare -A seen
queue=()
for b in "${binaries[@]}"; do queue+=($(needed "$b")); done
real_libs=()
while ((${#queue[@]})); do
  name="${queue[0]}"; queue=("${queue[@]:1}")
  [[ -n "${seen[$name]:-}" ]] && continue
  seen[$name]=1
  [[ "$name" =~ $system_re || "$name" =~ $torch_re ]] && continue
  is_stub "$name" && continue
  path="${where[$name]:-}"
  [[ -n "$path" ]] || { echo "prepare_carry.sh: the loader does not find $name" >&2; exit 1; }
  cp -L "$path" "$bundle/lib/$name"
  real_libs+=("$bundle/lib/$name")
  queue+=($(needed "$path"))
done

system_libs=()
for name in libstdc++.so.6 libgcc_s.so.1 libc.so.6 libm.so.6; do system_libs+=("${where[$name]}"); done
for name in "${stub_sonames[@]}"; do
  original="${where[$name]:-}"
  [[ -n "$original" ]] || { echo "prepare_carry.sh: $name is not linked any more; drop it from stub_sonames" >&2; exit 1; }
  args=(--original "$original" --out "$scratch/$name")
  for b in "${binaries[@]}"; do args+=(--importer "$b"); done
  for lib in "${real_libs[@]}"; do args+=(--importer "$lib" --keep "$lib"); done
  for lib in "${system_libs[@]}"; do args+=(--keep "$lib"); done
  [[ -f "tools/gpu/stubs/$name.c" ]] && args+=(--override "tools/gpu/stubs/$name.c")
  "$python" tools/gpu/stub_library.py "${args[@]}" --why "never called by vlmserve: see tools/gpu/prepare_carry.sh"
  cp "$scratch/$name" "$bundle/lib/$name"
done

# The bundle must be closed: every library resolves from it, from glibc/libstdc++, or from torch, and
# every symbol binds (ldd -r reports what the stubs lack).
torch_lib="$(dirname "${where[libc10.so]}")"
export_path="$bundle/lib:$torch_lib:$(dirname "${where[libcudart.so.13]}")"
report="$(for b in "${binaries[@]}"; do LD_LIBRARY_PATH="$export_path" ldd -r "$b" 2>&1; done)"
bad="$(grep -E 'not found|undefined symbol' <<<"$report" || true)"
leaks="$(awk '$2=="=>" && $3 ~ /^\// {print $1, $3}' <<<"$report" | grep -v " $bundle/lib/" |
         grep -vE "$system_re" | grep -vE "$torch_re" | grep -vE '/site-packages/(torch/lib|nvidia)/' || true)"
if [[ -n "$bad" || -n "$leaks" ]]; then
  echo "prepare_carry.sh: the bundle is not closed:" >&2
  [[ -n "$bad" ]] && echo "$bad" >&2
  [[ -n "$leaks" ]] && echo "resolved outside the bundle:" >&2 && echo "$leaks" >&2
  exit 1
fi

# Fixtures: generated here by the parity test setup (the GPU machine lacks the yolov5/ultralytics packages).
if ! [[ -f "$fixtures/reference_yolov5n.json" && -f "$fixtures/reference_yolo26n.json" ]]; then
  echo "== generating YOLO fixtures in $fixtures (tests/parity/yolo_fixtures.py)"
  VLM_ASSETS="$assets" VLM_TEST_DATA="$fixtures" "$python" tests/parity/yolo_fixtures.py >"$scratch/fixtures.log" 2>&1 ||
    { tail -20 "$scratch/fixtures.log"; exit 1; }
fi
cp -r "$assets/images" "$bundle/assets/images"
if [[ -x "$bundle/bin/nvjpeg_decode_check" ]]; then
  VLM_ASSETS="$assets" "$python" tests/gpu/make_jpeg_variants.py "$bundle/assets/jpeg_variants" >/dev/null
fi
if [[ -d "$f2" ]]; then
  mkdir -p "$f2/assets/florence2/Florence-2-base" "$f2/assets/florence2/onnx-community-Florence-2-base"
  cp "$assets"/florence2/Florence-2-base/{config,preprocessor_config}.json "$f2/assets/florence2/Florence-2-base/"
  cp "$assets"/florence2/onnx-community-Florence-2-base/{tokenizer,tokenizer_config,added_tokens,special_tokens_map,preprocessor_config}.json \
    "$f2/assets/florence2/onnx-community-Florence-2-base/"
fi
# The references name photos by absolute path under the assets folder they were computed from;
# run_all.sh rewrites that prefix to where the photos lie on the GPU machine.
echo "$assets" >"$bundle/fixtures/ASSETS_PREFIX"
for model in yolov5n yolov8n yolo11n yolo26n; do
  if [[ -f "$fixtures/$model.torchscript" && -f "$fixtures/reference_$model.json" ]]; then
    cp "$fixtures/$model.torchscript" "$bundle/fixtures/"
    # Fixtures made by ctest name photos through its VLM_ASSETS, which may hold a "..": resolved
    # here, so that every key starts with the ASSETS_PREFIX written above.
    "$python" -c 'import json, os, sys; d = json.load(open(sys.argv[1])); d["images"] = {os.path.realpath(k): v for k, v in d["images"].items()}; json.dump(d, open(sys.argv[2], "w"))' \
      "$fixtures/reference_$model.json" "$bundle/fixtures/reference_$model.json"
  else
    echo "prepare_carry.sh: no $model fixture in $fixtures; run_all.sh will skip it" >&2
  fi
done
[[ -f "$bundle/fixtures/yolov5n.torchscript" ]] || { echo "prepare_carry.sh: the yolov5n fixture is required" >&2; exit 1; }

# Smoke test here, with the bundle's libraries first (the real GDAL/GDCM/EXR/LAPACK of this machine
# must not be what runs): --version, then detect on one photo in each format vlmserve decodes.
smoke="$scratch/smoke"
mkdir -p "$smoke/images"
"$python" - "$assets/images/bus.jpg" "$smoke/images" <<'EOF'
import sys
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
image = Image.open(src).convert("RGB")
image.save(f"{out}/bus.jpg", quality=95)
image.save(f"{out}/bus.png")
image.save(f"{out}/bus.webp", quality=95)
image.save(f"{out}/bus.tiff", compression="tiff_lzw")
image.save(f"{out}/bus.bmp")
EOF
run_bundled() { env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$export_path" "$bundle/bin/vlmserve" "$@"; }
run_bundled --version
run_bundled detect "$smoke/images" --model "$bundle/fixtures/yolov5n.torchscript" --device cpu \
  --out "$smoke/results.jsonl" --save-annotated "$smoke/annotated" >"$smoke/detect.log" 2>&1 ||
  { cat "$smoke/detect.log"; echo "prepare_carry.sh: bundled detect failed" >&2; exit 1; }
"$python" - "$smoke/results.jsonl" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
for row in rows:
    labels = [d["label"] for d in row.get("detections", [])]
    print(f"  {row['path'].rsplit('/', 1)[-1]:10s} {row.get('error') or ''} {len(labels)} detections:"
          f" {labels.count('person')} person, {labels.count('bus')} bus")
    if "error" in row or "bus" not in labels or labels.count("person") < 3:
        sys.exit("prepare_carry.sh: bundled detect did not find the bus and the people")
if len(rows) != 5:
    sys.exit(f"prepare_carry.sh: expected 5 results, got {len(rows)}")
EOF
ls "$smoke/annotated" | grep -q . || { echo "prepare_carry.sh: --save-annotated wrote nothing" >&2; exit 1; }

{
  echo "# .gpu-deps, made by tools/gpu/prepare_carry.sh on $(date -u +%FT%TZ) from $binary ($(git rev-parse --short HEAD))"
  echo "# stubs (never called; see prepare_carry.sh): ${stub_sonames[*]}"
  (cd "$bundle" && find . -type f -printf '%s\t%p\n' | sort -k2 | awk -F'\t' '{printf "%10d  %s\n", $1, $2}')
} >"$bundle/MANIFEST.txt"
bundle_bytes=$(du -sb "$bundle" | cut -f1)
libs_bytes=$(du -sb "$bundle/lib" "$bundle/bin" | awk '{s+=$1} END {print s}')
tree_bytes=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
printf 'binary+libraries %.1f MiB (%d libraries, %d stubs), fixtures %.1f MiB, photos %.1f MiB; carry %.1f MiB + working tree %.1f MiB = %.1f MiB of 64\n' \
  "$(bc -l <<<"$libs_bytes/1048576")" "$(ls "$bundle/lib" | wc -l)" "${#stub_sonames[@]}" \
  "$(bc -l <<<"$(du -sb "$bundle/fixtures" | cut -f1)/1048576")" "$(bc -l <<<"$(du -sb "$bundle/assets" | cut -f1)/1048576")" \
  "$(bc -l <<<"$bundle_bytes/1048576")" "$(bc -l <<<"$tree_bytes/1048576")" "$(bc -l <<<"($bundle_bytes+$tree_bytes)/1048576")"
(( libs_bytes <= max_bundle_mib * 1048576 )) || { echo "prepare_carry.sh: binary+libraries exceed $max_bundle_mib MiB" >&2; exit 1; }
(( bundle_bytes + tree_bytes <= 62 * 1048576 )) || { echo "prepare_carry.sh: carry + tree too close to the 64 MiB limit: carry fewer fixtures, or pack it (tools/gpu/pack_carry.sh)" >&2; exit 1; }
if [[ -d "$f2" ]]; then
  # tools/gpu/florence2_bench.sh's call: .gpu-deps/{bin,lib,assets}, .f2-bench and .whl (if made).
  f2_bytes=$(du -scb "$bundle/bin" "$bundle/lib" "$bundle/assets" "$f2" $(ls "$root"/.whl/transformers-*.whl 2>/dev/null) | tail -1 | cut -f1)
  printf 'florence2_bench.sh carry %.1f MiB + working tree %.1f MiB = %.1f MiB of 64%s\n' "$(bc -l <<<"$f2_bytes/1048576")" \
    "$(bc -l <<<"$tree_bytes/1048576")" "$(bc -l <<<"($f2_bytes+$tree_bytes)/1048576")" \
    "$(ls "$root"/.whl/transformers-*.whl >/dev/null 2>&1 || echo ' (no .whl yet: run --florence2-reference-only)')"
fi
