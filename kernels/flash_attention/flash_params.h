#pragma once

// Plain argument block for the flash-attention forward kernels (after FA2's Flash_fwd_params):
// one struct instead of a long argument list, passed by value as a __grid_constant__ parameter.
// Torch-free so the launcher and the kernels compile without ATen headers.

#include <cstdint>
#include <vector>

#include <cuda_runtime_api.h>

namespace vlm::flash {

struct FlashFwdParams {
  // Logical [batch, heads, seq, head_dim] with arbitrary strides in elements; head_dim is contiguous.
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* o = nullptr;
  int64_t q_batch_stride = 0, q_head_stride = 0, q_row_stride = 0;
  int64_t k_batch_stride = 0, k_head_stride = 0, k_row_stride = 0;
  int64_t v_batch_stride = 0, v_head_stride = 0, v_row_stride = 0;
  int64_t o_batch_stride = 0, o_head_stride = 0, o_row_stride = 0;

  // Int32 [batch] or null: keys at positions >= key_lengths[b] are masked (right padding).
  const int* key_lengths = nullptr;

  int batch = 0;
  int heads = 0;
  int seqlen_q = 0;
  int seqlen_k = 0;
  int head_dim = 0;

  float scale = 1.0f;       // softmax scale applied to q.k
  float scale_log2 = 1.0f;  // scale * log2(e): the kernels use exp2
  // Bottom-right aligned: query i sees keys j <= i + (seqlen_k - seqlen_q).
  bool causal = false;
  bool is_bf16 = false;

  // Split-KV (flash-decoding): the keys are cut into num_splits ranges handled by separate blocks,
  // each writing a normalised fp32 partial output and its log2-sum-exp; a second kernel merges them.
  int num_splits = 1;
  float* o_partial = nullptr;    // [num_splits, batch, heads, seqlen_q, head_dim]
  float* lse_partial = nullptr;  // [num_splits, batch, heads, seqlen_q]

  // Decode kernel only (run_flash_decode). Cache append, as FA2's flash_attn_with_kvcache: when
  // position is set, the block of (b, h) writes new_k[b, h] and new_v[b, h] (one row each, head_dim
  // contiguous) into k and v themselves (the caches, written in place) at row *position, then attends keys
  // [0, *position], taking the key at *position from new_k/new_v: no block reads a row another writes.
  // A position outside [0, seqlen_k) writes nothing and attends nothing (output 0).
  const int64_t* position = nullptr;  // device scalar
  const void* new_k = nullptr;
  const void* new_v = nullptr;
  int64_t new_k_batch_stride = 0, new_k_head_stride = 0;
  int64_t new_v_batch_stride = 0, new_v_head_stride = 0;
  // k and v are not written by the kernel just before this one in the stream (keys computed once per
  // image): the decode kernel issues its first K/V loads before waiting for that kernel to finish.
  bool kv_ready = false;
};

// Workspace the launcher needs for these params (bytes); 0 when no split is used.
struct FlashFwdPlan {
  int config_index = 0;  // row of the config table (flash_config.h) that will run
  int num_splits = 1;
  int64_t workspace_bytes = 0;
};

// The built configurations that can run this shape (decode rows for <= 16 query rows, prefill rows
// otherwise), table order: the first is the default. Throws vlm::Error (internal) if there is none.
std::vector<int> flash_candidate_configs(const FlashFwdParams& params);

// Plans config_index (a candidate; -1: the default) with its split count for a shape on the given
// device. A bench override (set_flash_config_override) wins over both.
FlashFwdPlan plan_flash_fwd(const FlashFwdParams& params, int device, int config_index = -1);

// Runs the forward pass. params.o_partial / lse_partial must point to plan.workspace_bytes of device
// memory when plan.num_splits > 1. Throws vlm::Error (internal) on a launch failure or unsupported
// head dim (the torch-facing wrapper checks inputs before and reports them properly).
void run_flash_fwd(FlashFwdParams params, const FlashFwdPlan& plan, cudaStream_t stream);

// The single-pass decode kernel (flash_decode_kernel.cuh) covers 1-4 query rows per (batch, head),
// not causal unless one row (where bottom-right causal masks nothing), head dims 32/64/128.
bool flash_decode_covers(const FlashFwdParams& params);
// Whether a call takes that kernel: it covers the shape and no bench override
// (set_flash_config_override) asks for a table row of this head dim, so the split-KV decode config
// stays measurable.
bool flash_decode_selected(const FlashFwdParams& params);
// Runs the decode kernel, programmatically dependent on the previous kernel on sm_90+. Inputs as for
// run_flash_fwd plus the append fields; no workspace. Throws vlm::Error (internal) on a launch failure
// or a shape it does not cover.
void run_flash_decode(const FlashFwdParams& params, int device, cudaStream_t stream);

// Whether the driver can load these kernels on `device` (false e.g. for sm_90 without PTX).
bool flash_kernels_loadable(int device);

// Overrides the config choice and split count (bench/tuning only): -1 / 0 restore the defaults.
void set_flash_config_override(int config_index);
int flash_config_override();
void set_flash_splits_override(int num_splits);
bool flash_config_built(int config_index);

// Human-readable description of a config table row, e.g. "d128 m128 n64 w8".
const char* flash_config_name(int config_index);
int flash_config_count();

}  // namespace vlm::flash
