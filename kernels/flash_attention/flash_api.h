#pragma once

// Torch-facing entry to the flash-attention kernels. Only src/attention.cpp and the GPU test and
// benchmark programs include this; everything else goes through vlm::attention.

#include <string>

#include <ATen/core/Tensor.h>

#include "flash_attention/flash_autotune.h"

namespace vlm::flash {

// Runs the forward pass. q: [B, H, Sq, D], k and v: [B, H, Sk, D] on one CUDA device, fp16 or bf16,
// D in {32, 64, 128}, any strides with the last dim contiguous (other layouts are copied).
// key_lengths: optional int32/int64 [B]. Returns [B, H, Sq, D] as a view of a [B, Sq, H, D] buffer,
// or writes into `out` when given ([B, H, Sq, D], q's dtype and device, last dim contiguous, other
// strides multiples of 8). Throws vlm::Error(kInvalidArgument / kUnavailable) saying what it received.
at::Tensor flash_attention_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                                   bool causal, const at::Tensor& key_lengths, const at::Tensor& out = {});

// The process-wide per-shape config choice. Off (--flash-autotune=false, VLM_FLASH_AUTOTUNE=0): no
// timing, the table's defaults.
FlashAutotuner& flash_autotuner();
bool flash_autotune_enabled();
void set_flash_autotune_enabled(bool enabled);

// Empty when the kernels can run on this device (sm >= 80), else the reason.
std::string flash_device_unsupported_reason(int device);

}  // namespace vlm::flash
