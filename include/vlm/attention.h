#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ATen/core/Tensor.h>

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
AttentionChoice choose_attention_backend(const at::Tensor& q, const at::Tensor& k,
                                         const AttentionOptions& options);

// Process-wide default used when AttentionOptions::backend is kAuto (set from --attention).
void set_default_attention_backend(AttentionBackend backend);
AttentionBackend default_attention_backend();

// Backends compiled into this binary, e.g. {"flash", "eager", "sdpa"}.
std::vector<std::string> available_attention_backends();

}  // namespace vlm
