// Bitmask NMS as in torchvision, but the sequential sweep also runs on the device (one block), so
// the mask never travels to the host (torchvision issues #7412, #8713); and a batched greedy NMS for
// detection post-processing that needs no host-side count.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include "../../src/ops/nms_kernels.h"

namespace vlm::ops {
namespace {

constexpr int kBlock = 64;  // one bit per box in a 64-bit word

__device__ inline bool overlaps(const float* a, const float* b, float threshold) {
  float w = fmaxf(0.0F, fminf(a[2], b[2]) - fmaxf(a[0], b[0]));
  float h = fmaxf(0.0F, fminf(a[3], b[3]) - fmaxf(a[1], b[1]));
  float inter = w * h;
  float area_a = (a[2] - a[0]) * (a[3] - a[1]);
  float area_b = (b[2] - b[0]) * (b[3] - b[1]);
  return inter / (area_a + area_b - inter) > threshold;
}

// mask[i * col_blocks + c] bit k: box i suppresses box c * 64 + k (only for later boxes).
__global__ void overlap_mask_kernel(const float* boxes, int n, float threshold, unsigned long long* mask) {
  const int row_block = blockIdx.y;
  const int col_block = blockIdx.x;
  if (row_block > col_block) return;
  const int row_size = min(n - row_block * kBlock, kBlock);
  const int col_size = min(n - col_block * kBlock, kBlock);
  __shared__ float col_boxes[kBlock * 4];
  if (threadIdx.x < col_size) {
    for (int c = 0; c < 4; ++c) col_boxes[threadIdx.x * 4 + c] = boxes[(col_block * kBlock + threadIdx.x) * 4 + c];
  }
  __syncthreads();
  if (threadIdx.x >= row_size) return;
  const int i = row_block * kBlock + threadIdx.x;
  const float* box = boxes + i * 4;
  unsigned long long bits = 0;
  for (int k = (row_block == col_block ? threadIdx.x + 1 : 0); k < col_size; ++k) {
    if (overlaps(box, col_boxes + k * 4, threshold)) bits |= 1ULL << k;
  }
  const int col_blocks = (n + kBlock - 1) / kBlock;
  mask[static_cast<long long>(i) * col_blocks + col_block] = bits;
}

// The greedy sweep: box i survives unless a surviving earlier box suppressed it.
__global__ void sweep_kernel(const unsigned long long* mask, int n, int col_blocks, bool* keep) {
  extern __shared__ unsigned long long removed[];
  for (int c = threadIdx.x; c < col_blocks; c += blockDim.x) removed[c] = 0;
  __syncthreads();
  for (int i = 0; i < n; ++i) {
    bool alive = !((removed[i / kBlock] >> (i % kBlock)) & 1ULL);
    if (threadIdx.x == 0) keep[i] = alive;
    if (alive) {
      const unsigned long long* row = mask + static_cast<long long>(i) * col_blocks;
      for (int c = i / kBlock + threadIdx.x; c < col_blocks; c += blockDim.x) removed[c] |= row[c];
    }
    __syncthreads();
  }
}

// One warp per image: candidates in score order, each tested by the 32 lanes against the boxes kept
// so far; stops at max_kept. Same result as the mask and sweep above cut to max_kept, but with no
// n x n mask, so a whole batch's images run at once and the counts never leave the device.
__global__ void batched_greedy_kernel(const float* boxes, const int64_t* counts, int k_max, float threshold,
                                      int max_kept, int64_t* keep) {
  const int image = blockIdx.x;
  const int lane = threadIdx.x;
  const float* candidates = boxes + static_cast<long long>(image) * k_max * 4;
  int64_t* kept_index = keep + static_cast<long long>(image) * max_kept;
  for (int j = lane; j < max_kept; j += warpSize) kept_index[j] = -1;
  __syncwarp();
  const int n = static_cast<int>(min(counts[image], static_cast<int64_t>(k_max)));
  int kept = 0;
  for (int i = 0; i < n && kept < max_kept; ++i) {
    const float* box = candidates + i * 4;
    bool suppressed = false;
    for (int j = lane; j < kept && !suppressed; j += warpSize) {
      suppressed = overlaps(candidates + kept_index[j] * 4, box, threshold);
    }
    if (!__any_sync(0xffffffffU, suppressed)) {
      if (lane == 0) kept_index[kept] = i;
      ++kept;
      __syncwarp();  // the new entry is visible to every lane before the next candidate
    }
  }
}

}  // namespace

at::Tensor batched_nms_cuda(const at::Tensor& boxes_sorted, const at::Tensor& counts, float iou_threshold,
                            int64_t max_kept) {
  const auto batch = boxes_sorted.size(0);
  at::Tensor keep = at::empty({batch, max_kept}, boxes_sorted.options().dtype(at::kLong));
  if (batch == 0) return keep;
  auto stream = c10::cuda::getCurrentCUDAStream(boxes_sorted.device().index());
  batched_greedy_kernel<<<static_cast<unsigned>(batch), 32, 0, stream>>>(
      boxes_sorted.data_ptr<float>(), counts.data_ptr<int64_t>(), static_cast<int>(boxes_sorted.size(1)), iou_threshold,
      static_cast<int>(max_kept), keep.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return keep;
}

at::Tensor nms_keep_mask_cuda(const at::Tensor& boxes_sorted, float iou_threshold) {
  const int n = static_cast<int>(boxes_sorted.size(0));
  const int col_blocks = (n + kBlock - 1) / kBlock;
  auto stream = c10::cuda::getCurrentCUDAStream(boxes_sorted.device().index());
  at::Tensor mask = at::empty({static_cast<long long>(n) * col_blocks}, boxes_sorted.options().dtype(at::kLong));
  at::Tensor keep = at::empty({n}, boxes_sorted.options().dtype(at::kBool));
  auto* mask_ptr = reinterpret_cast<unsigned long long*>(mask.data_ptr<int64_t>());
  overlap_mask_kernel<<<dim3(col_blocks, col_blocks), kBlock, 0, stream>>>(boxes_sorted.data_ptr<float>(), n,
                                                                           iou_threshold, mask_ptr);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  sweep_kernel<<<1, 256, col_blocks * sizeof(unsigned long long), stream>>>(mask_ptr, n, col_blocks,
                                                                            keep.data_ptr<bool>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return keep;
}

}  // namespace vlm::ops
