# libtorch comes from the pinned PyPI torch wheel in .venv (scripts/setup.sh), the same build the GPU
# machine runs, so our CUDA code and libtorch agree on the CUDA major version. Its path is found
# without importing torch: an image build installs the wheel without torch's Python dependencies.
set(VLM_PYTHON "${CMAKE_CURRENT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH "Python that holds the torch wheel")
if(NOT EXISTS "${VLM_PYTHON}")
  find_program(VLM_PYTHON_FALLBACK python3 REQUIRED)
  set(VLM_PYTHON "${VLM_PYTHON_FALLBACK}")
endif()
execute_process(
  COMMAND "${VLM_PYTHON}" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"
  OUTPUT_VARIABLE VLM_SITE_PACKAGES OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT Torch_DIR)
  if(NOT EXISTS "${VLM_SITE_PACKAGES}/torch/share/cmake/Torch/TorchConfig.cmake")
    message(FATAL_ERROR "no torch wheel in ${VLM_SITE_PACKAGES} (from ${VLM_PYTHON}); run scripts/setup.sh first")
  endif()
  list(APPEND CMAKE_PREFIX_PATH "${VLM_SITE_PACKAGES}/torch/share/cmake")
endif()

# The CUDA toolkit: the system's at /usr/local/cuda, else the one scripts/setup.sh assembles from the
# CUDA 13 compiler wheels beside the torch wheel's CUDA libraries. libtorch's CMake package needs one
# even for a build without CUDA kernels.
set(vlm_wheel_cuda "${VLM_SITE_PACKAGES}/nvidia/cu13")
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
  if(EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
    set(vlm_cuda_root /usr/local/cuda)
  elseif(EXISTS "${vlm_wheel_cuda}/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "${vlm_wheel_cuda}/bin/nvcc")
    set(vlm_cuda_root "${vlm_wheel_cuda}")
  endif()
endif()
if(NOT CUDAToolkit_ROOT AND vlm_cuda_root)
  set(CUDAToolkit_ROOT "${vlm_cuda_root}")
  # libtorch's CMake package still uses the old FindCUDA, which reads this.
  set(CUDA_TOOLKIT_ROOT_DIR "${vlm_cuda_root}" CACHE PATH "CUDA toolkit for libtorch's CMake package")
endif()
# The architecture list must be known before torch's CUDA module runs, or it picks its own.
set(TORCH_CUDA_ARCH_LIST "8.0+PTX")
find_package(Torch REQUIRED)

include(CheckLanguage)
set(VLM_CUDA_ENABLED OFF)
if(VLM_WITH_CUDA STREQUAL "ON" OR VLM_WITH_CUDA STREQUAL "AUTO")
  check_language(CUDA)
  set(vlm_torch_has_cuda OFF)
  if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
    set(vlm_torch_has_cuda ON)
  endif()
  if(CMAKE_CUDA_COMPILER AND vlm_torch_has_cuda)
    set(VLM_CUDA_ENABLED ON)
  elseif(VLM_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "VLM_WITH_CUDA=ON but nvcc (${CMAKE_CUDA_COMPILER}) or CUDA-enabled libtorch is missing")
  endif()
endif()
if(VLM_CUDA_ENABLED)
  set(CMAKE_CUDA_ARCHITECTURES ${VLM_CUDA_ARCHITECTURES})
  # CMake 3.25 does not know nvcc 13 accepts C++20.
  set(CMAKE_CUDA_STANDARD 17)
  enable_language(CUDA)
  # libtorch's CMake package has already run its own copy of FindCUDAToolkit; running CMake 3.25's
  # again over the wheels' toolkit fails on the CUDA::nvToolsExt target the first one made.
  if(NOT TARGET CUDA::cudart)
    find_package(CUDAToolkit REQUIRED)
  endif()
  if(NOT CUDAToolkit_VERSION_MAJOR VERSION_EQUAL CUDA_VERSION_MAJOR AND DEFINED CUDA_VERSION_MAJOR)
    message(FATAL_ERROR "nvcc is CUDA ${CUDAToolkit_VERSION_MAJOR} but libtorch was built for CUDA ${CUDA_VERSION_MAJOR}")
  endif()
endif()

# nvJPEG, optional: the nvidia-nvjpeg wheel (scripts/setup.sh) beside the torch wheel's CUDA libraries,
# else a system toolkit's. Neither the torch wheel nor the compiler wheels carry it. Without it the
# build is the same less vlm_nvjpeg, and JPEGs are decoded on the CPU (OpenCV).
set(VLM_NVJPEG_FOUND OFF)
if(VLM_CUDA_ENABLED)
  find_path(VLM_NVJPEG_INCLUDE_DIR nvjpeg.h HINTS "${vlm_wheel_cuda}/include" "${vlm_cuda_root}/include" NO_DEFAULT_PATH)
  # The wheel ships only the versioned name.
  find_library(VLM_NVJPEG_LIBRARY NAMES nvjpeg libnvjpeg.so.13
    HINTS "${vlm_wheel_cuda}/lib" "${vlm_cuda_root}/lib64" "${vlm_cuda_root}/lib" NO_DEFAULT_PATH)
  if(VLM_NVJPEG_INCLUDE_DIR AND VLM_NVJPEG_LIBRARY)
    set(VLM_NVJPEG_FOUND ON)
    message(STATUS "nvJPEG: ${VLM_NVJPEG_LIBRARY}")
  else()
    message(STATUS "nvJPEG not found (scripts/setup.sh installs the nvidia-nvjpeg wheel): JPEG decode stays on the CPU")
  endif()
endif()

# VLM_WITH_CUDA=OFF builds a CPU-only binary: it links libtorch_cpu alone, not libtorch_cuda and the
# CUDA libraries behind it (3.3 GB a CPU image would carry unused). libtorch_cpu.so itself still
# needs libcudart and libcupti (its profiler), 10 MB together. With ON or AUTO the binary links all of
# libtorch and runs on either device, CUDA kernels or not.
if(VLM_WITH_CUDA STREQUAL "OFF")
  add_library(vlm_torch_cpu INTERFACE)
  target_link_libraries(vlm_torch_cpu INTERFACE torch_cpu_library)
  target_include_directories(vlm_torch_cpu SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  target_compile_options(vlm_torch_cpu INTERFACE ${TORCH_CXX_FLAGS})
  set(VLM_TORCH_LIBRARIES vlm_torch_cpu)
else()
  set(VLM_TORCH_LIBRARIES ${TORCH_LIBRARIES})
endif()

# videoio (with Debian's FFmpeg backend) is for `vlmserve detect`'s video inputs only: the CLI links it,
# the models and the server do not.
find_package(OpenCV 4 REQUIRED COMPONENTS core imgproc imgcodecs videoio)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog 1.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(Threads REQUIRED)
if(VLM_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# libtorch ships its own fmt (12.x) headers in its include root, which would shadow the Debian fmt
# that spdlog and our logging are built against. A folder holding only a link to the system fmt,
# searched first, keeps every translation unit on one fmt.
get_target_property(vlm_fmt_includes fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
list(GET vlm_fmt_includes 0 vlm_fmt_include)
set(VLM_FMT_SHIM "${CMAKE_BINARY_DIR}/fmt-shim")
file(MAKE_DIRECTORY "${VLM_FMT_SHIM}")
if(NOT EXISTS "${VLM_FMT_SHIM}/fmt")
  file(CREATE_LINK "${vlm_fmt_include}/fmt" "${VLM_FMT_SHIM}/fmt" SYMBOLIC)
endif()
