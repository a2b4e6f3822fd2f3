// Residual add and LayerNorm in one pass: one block per row, the row's sum kept in registers between
// the statistics and the normalisation, statistics in float (mean, then the centred sum of squares,
// as a two-pass variance: no cancellation).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../add_layer_norm_kernels.h"

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

template <typename T>
__global__ void __launch_bounds__(kThreads)
    add_layer_norm_kernel(const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ weight,
                          const T* __restrict__ bias, T* __restrict__ out, int d, float eps) {
  __shared__ float scratch[kThreads / 32];
  const long long row = blockIdx.x;
  const T* xr = x + row * d;
  const T* yr = y + row * d;
  float v[kMaxPerThread];
  float sum = 0.0F;
#pragma unroll
  for (int k = 0; k < kMaxPerThread; ++k) {
    const int i = threadIdx.x + k * kThreads;
    // The sum rounded to T, as `x + y` in T rounds it before at::layer_norm reads it.
    v[k] = i < d ? to_float(static_cast<T>(to_float(xr[i]) + to_float(yr[i]))) : 0.0F;
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
    if (i < d) outr[i] = static_cast<T>((v[k] - mean) * rstd * to_float(weight[i]) + to_float(bias[i]));
  }
}

template <typename T>
void launch(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& out,
            double eps) {
  const auto rows = static_cast<unsigned>(x.size(0));
  const auto d = static_cast<int>(x.size(1));
  auto stream = c10::cuda::getCurrentCUDAStream(x.device().index());
  add_layer_norm_kernel<T><<<rows, kThreads, 0, stream>>>(x.const_data_ptr<T>(), y.const_data_ptr<T>(),
                                                          weight.const_data_ptr<T>(), bias.const_data_ptr<T>(),
                                                          out.mutable_data_ptr<T>(), d, static_cast<float>(eps));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

at::Tensor add_layer_norm_cuda(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight,
                               const at::Tensor& bias, double eps) {
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty_like(x);
  if (x.size(0) == 0) return out;
  switch (x.scalar_type()) {
    case at::kHalf: launch<at::Half>(x, y, weight, bias, out, eps); break;
    case at::kBFloat16: launch<at::BFloat16>(x, y, weight, bias, out, eps); break;
    default: launch<float>(x, y, weight, bias, out, eps); break;
  }
  return out;
}

}  // namespace vlm::ops
