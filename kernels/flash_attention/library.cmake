# The flash-attention library's one definition, used by the product build (kernels/CMakeLists.txt) and
# by the standalone GPU-machine build of the checks (tests/gpu/CMakeLists.txt), which has nvcc and the
# torch wheel but none of the product's other dependencies.
#   vlm_flash_attention_library(<target> [TUNING_CONFIGS])
# TUNING_CONFIGS also builds the config-table rows kept only for tuning (flash_attention_bench --tune).
include(${CMAKE_CURRENT_LIST_DIR}/sources.cmake)
set(VLM_KERNELS_DIR ${CMAKE_CURRENT_LIST_DIR}/.. CACHE INTERNAL "")

# Kernels launched with programmatic dependent launch (common/programmatic_launch.cuh) need sm_90
# code: compute_80 PTX has no griddepcontrol. Their files get sm_90 SASS and compute_90 PTX (newer
# GPUs JIT that) besides the target's sm_80 code, and the definition the header checks for.
#   vlm_programmatic_launch_sources(<target> <source>...)
function(vlm_programmatic_launch_sources target)
  set_source_files_properties(${ARGN} TARGET_DIRECTORY ${target} PROPERTIES
    COMPILE_OPTIONS "--generate-code=arch=compute_90,code=[compute_90,sm_90]"
    COMPILE_DEFINITIONS VLM_PROGRAMMATIC_LAUNCH_CODE=1)
endfunction()

function(vlm_flash_attention_library target)
  cmake_parse_arguments(ARG "TUNING_CONFIGS" "" "" ${ARGN})
  set(sources ${VLM_FLASH_SOURCES})
  if(ARG_TUNING_CONFIGS)
    list(APPEND sources ${VLM_FLASH_TUNING_SOURCES})
  endif()
  list(APPEND sources common/programmatic_launch.cpp)
  list(TRANSFORM sources PREPEND ${VLM_KERNELS_DIR}/)
  add_library(${target} STATIC ${sources})
  # The single-pass decode kernel waits on the kernel before it (programmatic dependent launch).
  set(programmatic ${VLM_FLASH_PROGRAMMATIC_LAUNCH_SOURCES})
  list(TRANSFORM programmatic PREPEND ${VLM_KERNELS_DIR}/)
  vlm_programmatic_launch_sources(${target} ${programmatic})
  get_filename_component(root ${VLM_KERNELS_DIR}/.. ABSOLUTE)
  target_include_directories(${target} PUBLIC ${VLM_KERNELS_DIR} ${root}/include)
  target_include_directories(${target} SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})
  target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES} CUDA::cudart)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xptxas=-warn-spills>)
  # Torch's CMake adds only sm_80 SASS, which does not load on sm_90 ("no kernel image is available",
  # seen on an H200); compute_80 PTX lets the driver JIT the same kernels for sm_86/89/90.
  target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:SHELL:-gencode arch=compute_80,code=compute_80>")
  if(ARG_TUNING_CONFIGS)
    target_compile_definitions(${target} PRIVATE VLM_FLASH_TUNING_CONFIGS=1)
  endif()
  set_target_properties(${target} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF POSITION_INDEPENDENT_CODE ON)
endfunction()
