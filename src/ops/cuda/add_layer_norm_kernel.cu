// Residual add and LayerNorm in one pass: one block per row, the row's sum kept in registers between
// the statistics and the normalisation, statistics in float (mean, then the centred sum of squares,
// as a two-pass variance: no cancellation).
#include <cstdint>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/macros/Macros.h>

#include "../add_layer_norm_kernels.h"
#include "common/programmatic_launch.cuh"

namespace vlm::ops {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxPerThread = 16;  // 4096 / kThreads: the widest row kept in registers

// T is float, at::Half or at::BFloat16: c10's types convert to and from float on the device with
// round-to-nearest, as the separate ops round.
template <typename T>
__device__ inline float to_float(T v) {
  return static_cast<float>(v);
}

// Sum over the block; every thread gets the total.
__device__ inline float block_sum(float v, float* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffU, v, offset);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.0F;
  for (int w = 0; w < kThreads / 32; ++w) total += scratch[w];
  __syncthreads();  // scratch is reused by the next call
  return total;
}

// Where a row's two summands come from. Plain rows: x and y row r. A decode step's embedding: the
// table row x_index[r * x_index_row_stride + *y_position * x_index_column_stride] (row r's token at the
// step's position), scaled (rounded to T, as `h * scale` rounds it) when x_scale != 1, and the one y
// row *y_position + y_offset for every row (a learned position).
template <typename T>
struct RowSources {
  const T* x = nullptr;
  const T* y = nullptr;
  const std::int64_t* x_index = nullptr;
  std::int64_t x_index_row_stride = 0;
  std::int64_t x_index_column_stride = 0;
  std::int64_t x_index_columns = 0;
  std::int64_t x_rows = 0;
  float x_scale = 1.0F;
  const std::int64_t* y_position = nullptr;
  std::int64_t y_offset = 0;
  std::int64_t y_rows = 0;
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
    add_layer_norm_kernel(RowSources<T> src, const T* __restrict__ weight, const T* __restrict__ bias,
                          T* __restrict__ out, int d, float eps) {
  __shared__ float scratch[kThreads / 32];
  // Launched programmatically dependent (kernels/common/programmatic_launch.cuh): the norm's own
  // parameters are read while the kernel that writes y finishes.
  float gamma[kMaxPerThread];
  float beta[kMaxPerThread];
#pragma unroll
  for (int k = 0; k < kMaxPerThread; ++k) {
    const int i = threadIdx.x + k * kThreads;
    gamma[k] = i < d ? to_float(weight[i]) : 0.0F;
    beta[k] = i < d ? to_float(bias[i]) : 0.0F;
  }
  kernels::grid_dependency_wait();
  kernels::allow_dependent_launch();
  const long long row = blockIdx.x;
  long long x_row = row;
  long long y_row = row;
  if (src.y_position != nullptr) {
    y_row = *src.y_position + src.y_offset;
    CUDA_KERNEL_ASSERT(y_row >= 0 && y_row < src.y_rows);
  }
  if (src.x_index != nullptr) {
    const std::int64_t column = *src.y_position;
    CUDA_KERNEL_ASSERT(column >= 0 && column < src.x_index_columns);
    x_row = src.x_index[row * src.x_index_row_stride + column * src.x_index_column_stride];
    CUDA_KERNEL_ASSERT(x_row >= 0 && x_row < src.x_rows);
  }
  const T* xr = src.x + x_row * d;
  const T* yr = src.y + y_row * d;
  const bool scaled = src.x_scale != 1.0F;
  float v[kMaxPerThread];
  float sum = 0.0F;
#pragma unroll
  for (int k = 0; k < kMaxPerThread; ++k) {
    const int i = threadIdx.x + k * kThreads;
    float xv = i < d ? to_float(xr[i]) : 0.0F;
    if (scaled) xv = to_float(static_cast<T>(xv * src.x_scale));
    // The sum rounded to T, as `x + y` in T rounds it before at::layer_norm reads it.
    v[k] = i < d ? to_float(static_cast<T>(xv + to_float(yr[i]))) : 0.0F;
    sum += v[k];
  }
  const float mean = block_sum(sum, scratch) / static_cast<float>(d);
  float squares = 0.0F;
#pragma unroll
  for (int k = 0; k < kMaxPerThread; ++k) {
    const int i = threadIdx.x + k * kThreads;
    const float centred = i < d ? v[k] - mean : 0.0F;
    squares += centred * centred;
  }
  const float rstd = rsqrtf(block_sum(squares, scratch) / static_cast<float>(d) + eps);
  T* outr = out + row * d;
#pragma unroll
  for (int k = 0; k < kMaxPerThread; ++k) {
    const int i = threadIdx.x + k * kThreads;
    if (i < d) outr[i] = static_cast<T>((v[k] - mean) * rstd * gamma[k] + beta[k]);
  }
}

template <typename T>
void launch(const RowSources<T>& src, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& out, double eps) {
  const auto rows = static_cast<unsigned>(out.size(0));
  const auto d = static_cast<int>(out.size(1));
  const int device = out.device().index();
  auto stream = c10::cuda::getCurrentCUDAStream(device);
  C10_CUDA_CHECK(kernels::launch_kernel(device, add_layer_norm_kernel<T>, dim3(rows), dim3(kThreads), 0, stream, src,
                                        weight.const_data_ptr<T>(), bias.const_data_ptr<T>(), out.mutable_data_ptr<T>(),
                                        d, static_cast<float>(eps)));
}

template <typename T>
void launch_rows(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight, const at::Tensor& bias,
                 at::Tensor& out, double eps) {
  RowSources<T> src;
  src.x = x.const_data_ptr<T>();
  src.y = y.const_data_ptr<T>();
  launch<T>(src, weight, bias, out, eps);
}

template <typename T>
void launch_embedding(const at::Tensor& table, const at::Tensor& ids, double scale, const at::Tensor& positions,
                      const at::Tensor& position, std::int64_t offset, const at::Tensor& weight, const at::Tensor& bias,
                      at::Tensor& out, double eps) {
  RowSources<T> src;
  src.x = table.const_data_ptr<T>();
  src.x_index = ids.const_data_ptr<std::int64_t>();
  src.x_index_row_stride = ids.stride(0);
  src.x_index_column_stride = ids.stride(1);
  src.x_index_columns = ids.size(1);
  src.x_rows = table.size(0);
  src.x_scale = static_cast<float>(scale);
  src.y = positions.const_data_ptr<T>();
  src.y_position = position.const_data_ptr<std::int64_t>();
  src.y_offset = offset;
  src.y_rows = positions.size(0);
  launch<T>(src, weight, bias, out, eps);
}

}  // namespace

at::Tensor add_layer_norm_cuda(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight,
                               const at::Tensor& bias, double eps) {
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty_like(x);
  if (x.size(0) == 0) return out;
  switch (x.scalar_type()) {
    case at::kHalf: launch_rows<at::Half>(x, y, weight, bias, out, eps); break;
    case at::kBFloat16: launch_rows<at::BFloat16>(x, y, weight, bias, out, eps); break;
    default: launch_rows<float>(x, y, weight, bias, out, eps); break;
  }
  return out;
}

at::Tensor embedding_layer_norm_cuda(const at::Tensor& table, const at::Tensor& ids, double scale,
                                     const at::Tensor& positions, const at::Tensor& position, std::int64_t offset,
                                     const at::Tensor& weight, const at::Tensor& bias, double eps) {
  const c10::cuda::CUDAGuard guard(table.device());
  at::Tensor out = at::empty({ids.size(0), table.size(1)}, table.options());
  if (ids.size(0) == 0) return out;
  switch (table.scalar_type()) {
    case at::kHalf:
      launch_embedding<at::Half>(table, ids, scale, positions, position, offset, weight, bias, out, eps);
      break;
    case at::kBFloat16:
      launch_embedding<at::BFloat16>(table, ids, scale, positions, position, offset, weight, bias, out, eps);
      break;
    default: launch_embedding<float>(table, ids, scale, positions, position, offset, weight, bias, out, eps); break;
  }
  return out;
}

}  // namespace vlm::ops
