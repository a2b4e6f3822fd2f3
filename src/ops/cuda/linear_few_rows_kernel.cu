// y = x W^T + b for a few rows of x: a warp per output feature streams that feature's weight row in
// 16-byte loads (all of them issued before the first is used: at these sizes the time is the memory
// latency, not its bandwidth), multiplies it with every row of x (cached: every warp reads the same
// few rows), accumulates in float32 and reduces across the warp. The weight is read exactly once.
#include <cmath>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../linear_kernels.h"
#include "common/programmatic_launch.cuh"

namespace vlm::ops {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kVector = 8;  // elements per 16-byte load
// 16-byte weight loads a lane keeps in registers before the wait: rows of up to 4096 inputs.
constexpr int kPrefetchLoads = 16;

template <typename T>
__device__ inline float to_float(T v) {
  return static_cast<float>(v);
}

// 8 elements of T from a 16-byte aligned address, as floats.
template <typename T>
__device__ inline void load8(const T* p, float (&out)[kVector]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const T* v = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < kVector; ++i) out[i] = to_float(v[i]);
}

// x's rows times one 8-element slice of the weight row, added to acc.
template <typename T, int kRows>
__device__ inline void accumulate(const uint4& raw, const T* __restrict__ x, int in, int k, float (&acc)[kRows]) {
  const T* wt = reinterpret_cast<const T*>(&raw);
  float wv[kVector];
#pragma unroll
  for (int i = 0; i < kVector; ++i) wv[i] = to_float(wt[i]);
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    float xv[kVector];
    load8(x + static_cast<long long>(r) * in + k, xv);
#pragma unroll
    for (int i = 0; i < kVector; ++i) acc[r] = fmaf(wv[i], xv[i], acc[r]);
  }
}

// Launched programmatically dependent (kernels/common/programmatic_launch.cuh): a warp loads its whole
// weight row into registers (in <= kPrefetchLoads * 256: every Florence-2 projection) before waiting
// for the kernel that writes x, so the weight read overlaps that kernel instead of following it.
template <typename T, int kRows, bool kGelu>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    linear_few_rows_kernel(const T* __restrict__ x, const T* __restrict__ weight, const T* __restrict__ bias,
                           T* __restrict__ out, int in, int features) {
  const int lane = threadIdx.x % 32;
  const int feature = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  const bool active = feature < features;
  const T* w = weight + static_cast<long long>(active ? feature : 0) * in;
  const bool prefetched = in <= kPrefetchLoads * 32 * kVector;
  uint4 w_regs[kPrefetchLoads];
  if (active && prefetched) {
#pragma unroll
    for (int c = 0; c < kPrefetchLoads; ++c) {
      const int k = (c * 32 + lane) * kVector;
      if (k < in) w_regs[c] = __ldg(reinterpret_cast<const uint4*>(w + k));
    }
  }
  kernels::grid_dependency_wait();
  kernels::allow_dependent_launch();
  if (!active) return;
  float acc[kRows] = {};
  if (prefetched) {
#pragma unroll
    for (int c = 0; c < kPrefetchLoads; ++c) {
      const int k = (c * 32 + lane) * kVector;
      if (k < in) accumulate<T, kRows>(w_regs[c], x, in, k, acc);
    }
  } else {
#pragma unroll 4
    for (int k = lane * kVector; k < in; k += 32 * kVector) {
      accumulate<T, kRows>(__ldg(reinterpret_cast<const uint4*>(w + k)), x, in, k, acc);
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    for (int offset = 16; offset > 0; offset /= 2) acc[r] += __shfl_xor_sync(0xffffffffU, acc[r], offset);
  }
  if (lane >= kRows) return;
  // Lane r writes row r: the sum, rounded to T as the linear's output is, then the activation.
  float y = 0.0F;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r == lane) y = acc[r];
  }
  if (bias != nullptr) y += to_float(bias[feature]);
  T rounded = static_cast<T>(y);
  if constexpr (kGelu) {
    const float v = to_float(rounded);
    rounded = static_cast<T>(0.5F * v * (1.0F + erff(v * static_cast<float>(M_SQRT1_2))));
  }
  out[static_cast<long long>(lane) * features + feature] = rounded;
}

template <typename T, int kRows>
void launch_rows(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& out,
                 Activation activation) {
  const auto in = static_cast<int>(x.size(1));
  const auto features = static_cast<int>(weight.size(0));
  const unsigned blocks = (features + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const int device = x.device().index();
  auto stream = c10::cuda::getCurrentCUDAStream(device);
  const T* b = bias.defined() ? bias.const_data_ptr<T>() : nullptr;
  auto* kernel = activation == Activation::kGeluExact ? linear_few_rows_kernel<T, kRows, true>
                                                      : linear_few_rows_kernel<T, kRows, false>;
  C10_CUDA_CHECK(kernels::launch_kernel(device, kernel, dim3(blocks), dim3(kWarpsPerBlock * 32), 0, stream,
                                        x.const_data_ptr<T>(), weight.const_data_ptr<T>(), b, out.mutable_data_ptr<T>(),
                                        in, features));
}

template <typename T>
void launch(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& out,
            Activation activation) {
  switch (x.size(0)) {
    case 1: launch_rows<T, 1>(x, weight, bias, out, activation); break;
    case 2: launch_rows<T, 2>(x, weight, bias, out, activation); break;
    case 3: launch_rows<T, 3>(x, weight, bias, out, activation); break;
    case 4: launch_rows<T, 4>(x, weight, bias, out, activation); break;
    case 5: launch_rows<T, 5>(x, weight, bias, out, activation); break;
    case 6: launch_rows<T, 6>(x, weight, bias, out, activation); break;
    case 7: launch_rows<T, 7>(x, weight, bias, out, activation); break;
    default: launch_rows<T, 8>(x, weight, bias, out, activation); break;
  }
}

}  // namespace

static_assert(kFewRowsMaxRows == 8, "launch() instantiates 1 to 8 rows");

at::Tensor linear_few_rows_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                Activation activation) {
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty({x.size(0), weight.size(0)}, x.options());
  if (weight.size(0) == 0) return out;
  if (x.scalar_type() == at::kHalf) {
    launch<at::Half>(x, weight, bias, out, activation);
  } else {
    launch<at::BFloat16>(x, weight, bias, out, activation);
  }
  return out;
}

}  // namespace vlm::ops
