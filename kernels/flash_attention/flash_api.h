#pragma once

// Torch-facing entry to the flash-attention kernels. Only src/attention.cpp and the GPU test and
// benchmark programs include this; everything else goes through vlm::attention.

#include <string>

#include <ATen/core/Tensor.h>

#include "flash_attention/flash_autotune.h"

namespace vlm::flash {

struct FlashForwardOptions {
  bool causal = false;
  at::Tensor key_lengths;  // int32/int64 [B] or undefined
  at::Tensor out;          // written when given (see flash_attention_forward)
  // Cache append, as FA2's flash_attn_with_kvcache: write new_k and new_v ([B, H, 1, D], any strides)
  // into k and v (the caches, [B, H, L, D], written in place) at row `position` (an int64 scalar
  // on q's device, e.g. the step's), then attend keys [0, position]. Not with key_lengths.
  at::Tensor new_k, new_v, position;
  // k and v are not written by the kernel just before this call on the stream (cross-attention keys
  // computed once per image): the decode kernel starts loading them while that kernel finishes.
  bool kv_ready = false;
};

// Runs the forward pass. q: [B, H, Sq, D], k and v: [B, H, Sk, D] on one CUDA device, fp16 or bf16,
// D in {32, 64, 128}, any strides with the last dim contiguous (other layouts are copied; with an
// append, k and v must already be so). Returns [B, H, Sq, D] as a view of a [B, Sq, H, D] buffer, or
// writes into options.out when given ([B, H, Sq, D], q's dtype and device, last dim contiguous,
// other strides multiples of 8). 1-4 query rows (1 when causal) take the single-pass decode kernel
// (flash_decode_selected), with the append fused in; other shapes the config table, after an
// index_copy_ for an append. Throws vlm::Error(kInvalidArgument / kUnavailable) saying what it received.
at::Tensor flash_attention_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                                   const FlashForwardOptions& options);
at::Tensor flash_attention_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                                   bool causal, const at::Tensor& key_lengths, const at::Tensor& out = {});

// The process-wide per-shape config choice. Off (--flash-autotune=false, VLM_FLASH_AUTOTUNE=0): no
// timing, the table's defaults.
FlashAutotuner& flash_autotuner();
bool flash_autotune_enabled();
void set_flash_autotune_enabled(bool enabled);

// Empty when the kernels can run on this device (sm >= 80), else the reason; asked of the driver once
// per device.
std::string flash_device_unsupported_reason(int device);

}  // namespace vlm::flash
