#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace vlm {

enum class AttentionBackend { kAuto, kFlash, kEager, kSdpa };

AttentionBackend parse_attention_backend(std::string_view name);  // throws kInvalidArgument
std::string_view attention_backend_name(AttentionBackend backend);

struct AttentionOptions {
  std::optional<double> scale;  // default 1/sqrt(head_dim)
  // Causal with bottom-right alignment: query i sees keys j <= i + (Sk - Sq), as when decoding
  // with a cache.
  bool causal = false;
  // Int32/Int64 [B]: keys at positions >= key_lengths[b] are masked (right padding). Undefined: none.
  at::Tensor key_lengths;
  AttentionBackend backend = AttentionBackend::kAuto;

  // A decode step's cache write, fused into the attention on the flash backend (as FA2's
  // flash_attn_with_kvcache): write key and value ([B, H, 1, D], any strides, e.g. views of the QKV
  // projection) into k and v (the caches, [B, H, L, D], written in place) at `position` (one int64 on
  // k's device, position < L), then attend keys [0, position]: key lengths position + 1 for every
  // row. Not together with key_lengths.
  struct CacheAppend {
    at::Tensor key, value;
    at::Tensor position;
  };
  std::optional<CacheAppend> append;

  // k and v are not written by the kernel just before this call on the stream (Florence-2's
  // cross-attention keys, computed once per image): the flash decode kernel then starts reading them
  // while that kernel finishes (programmatic dependent launch). Leave false when unsure.
  bool kv_ready = false;
};

// The one attention entry point every model calls.
// q: [B, H, Sq, D], k and v: [B, H, Sk, D], any strides (views of [B, S, H, D] need no copy).
// Returns [B, H, Sq, D] (possibly a transposed view of a [B, Sq, H, D] buffer).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionOptions& options = {});

// The backend `attention` would use for these inputs, and why when it is not the one asked for.
struct AttentionChoice {
  AttentionBackend backend;
  std::string fallback_reason;  // empty when the requested backend runs
};
AttentionChoice choose_attention_backend(const at::Tensor& q, const at::Tensor& k, const AttentionOptions& options);

// What the dispatcher knows about a call, without tensors, so that the choice is unit-testable on a
// machine without a GPU.
struct AttentionRequest {
  bool on_cuda = false;
  int sm_major = 0;  // compute capability of the CUDA device (0 when not on CUDA)
  int sm_minor = 0;
  bool kernel_image = true;  // the flash kernels have code this GPU can load (sm_80 SASS or PTX)
  c10::ScalarType dtype = c10::ScalarType::Float;
  int64_t head_dim = 0;
  double scale = 1.0;
};
// `requested` is already resolved from kAuto to the process default; flash_built says whether this
// binary has the kernels. Throws kUnavailable when flash is asked for explicitly and the setting
// (build, device, dtype) cannot run it; a shape the kernel does not cover (head dim) runs eager with
// the reason, explicit or not.
AttentionChoice choose_attention_backend(const AttentionRequest& request, AttentionBackend requested, bool flash_built);

// A model's backend setting, checked when it loads: what its attention calls of `head_dim` on
// `device` in `dtype` will run (kAuto: flash where it can, else eager). Throws kUnavailable when flash
// is asked for and cannot run there, as the first call would.
AttentionChoice check_attention_backend(AttentionBackend requested, const c10::Device& device, c10::ScalarType dtype,
                                        int64_t head_dim);

// Process-wide default used when AttentionOptions::backend is kAuto (set from --attention).
void set_default_attention_backend(AttentionBackend backend);
AttentionBackend default_attention_backend();

// Backends compiled into this binary, e.g. {"flash", "eager", "sdpa"}.
std::vector<std::string> available_attention_backends();

}  // namespace vlm
