#pragma once

#include <string_view>

// Process-wide runtime settings, reachable without torch headers (for CLI and server code).
namespace vlm {

void set_cpu_threads(int threads);
// Turns off TF32 in cuDNN convolutions and cuBLAS matmuls for the whole process. libtorch allows
// TF32 convolutions by default (10-bit mantissa, errors near 1e-3), which makes "fp32" on CUDA
// disagree with fp32 references; every fp32 model on CUDA calls this as it loads
// (florence2::Pipeline, yolo::load_yolo_model). Never turned back on, so an fp16 model loaded later
// cannot lower an fp32 model's precision.
void require_exact_float32();
// Parses auto|flash|eager|sdpa (throws kInvalidArgument) and makes it the default backend.
void set_default_attention_backend_by_name(std::string_view name);
// Whether the flash kernel times its tile configurations on the first call of each shape bucket
// (on by default); off, it uses each head dim's default tile. No effect without CUDA.
void set_flash_autotune(bool enabled);
// Whether our decode kernels use programmatic dependent launch on GPUs that have it (compute
// capability 9.0+; on by default): each starts, and loads its weights, while the kernel before it
// finishes. Off only to measure what it gains. No effect without CUDA.
void set_programmatic_dependent_launch(bool enabled);
bool programmatic_dependent_launch();

}  // namespace vlm
