// The one attention entry point. Backend choice happens here and nowhere else.
#include "vlm/ops/attention.h"
#include "vlm/runtime.h"

#include <ATen/ATen.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "vlm/error.h"
#include "vlm/logging.h"

#if VLM_WITH_CUDA
#include <cuda_runtime_api.h>

#include "flash_attention/flash_api.h"
#include "flash_attention/flash_params.h"
#endif

namespace vlm {
namespace {

std::atomic<AttentionBackend> g_default_backend{AttentionBackend::kAuto};

void check_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  auto shape = [](const at::Tensor& t) { return std::string(t.sizes().vec().empty() ? "[]" : c10::str(t.sizes())); };
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) {
    throw Error(ErrorCode::kInvalidArgument, "attention expects 4-d q, k, v [B, H, S, D], got q " + shape(q) + ", k " +
                                                 shape(k) + ", v " + shape(v));
  }
  if (k.sizes() != v.sizes() || q.size(0) != k.size(0) || q.size(1) != k.size(1) || q.size(3) != k.size(3)) {
    throw Error(ErrorCode::kInvalidArgument,
                "attention shapes disagree: q " + shape(q) + ", k " + shape(k) + ", v " + shape(v));
  }
  if (q.scalar_type() != k.scalar_type() || q.scalar_type() != v.scalar_type() || q.device() != k.device() ||
      q.device() != v.device()) {
    throw Error(ErrorCode::kInvalidArgument, "attention q, k, v must share dtype and device");
  }
}

void check_append(const at::Tensor& k, const AttentionOptions& options) {
  if (!options.append) return;
  const AttentionOptions::CacheAppend& append = *options.append;
  auto shape = [](const at::Tensor& t) { return t.defined() ? c10::str(t.sizes()) : std::string("undefined"); };
  const std::vector<int64_t> row{k.size(0), k.size(1), 1, k.size(3)};
  if (!append.key.defined() || !append.value.defined() || append.key.sizes() != at::IntArrayRef(row) ||
      append.value.sizes() != at::IntArrayRef(row)) {
    throw Error(ErrorCode::kInvalidArgument, "attention's cache append needs key and value " +
                                                 c10::str(at::IntArrayRef(row)) + " for k " + shape(k) + ", got " +
                                                 shape(append.key) + " and " + shape(append.value));
  }
  if (append.key.scalar_type() != k.scalar_type() || append.value.scalar_type() != k.scalar_type() ||
      append.key.device() != k.device() || append.value.device() != k.device()) {
    throw Error(ErrorCode::kInvalidArgument, "attention's cache append key and value must share k's dtype and device");
  }
  if (!append.position.defined() || append.position.numel() != 1 || append.position.scalar_type() != at::kLong ||
      append.position.device() != k.device()) {
    throw Error(ErrorCode::kInvalidArgument,
                "attention's cache append position must be one int64 on k's device, got " + shape(append.position));
  }
  if (options.key_lengths.defined()) {
    throw Error(ErrorCode::kInvalidArgument,
                "attention takes key_lengths or a cache append (lengths position + 1), not both");
  }
}

// The append for the eager and sdpa backends: the row written with index_copy_, and the key lengths
// position + 1 it implies (int64 [B]).
at::Tensor append_with_index_copy(const at::Tensor& k, const at::Tensor& v,
                                  const AttentionOptions::CacheAppend& append) {
  const at::Tensor index = append.position.reshape({1});
  k.index_copy_(2, index, append.key);
  v.index_copy_(2, index, append.value);
  return (index + 1).expand({k.size(0)});
}

// [B, 1, Sq, Sk] boolean mask, true where attention is allowed; undefined when nothing is masked.
at::Tensor build_mask(const at::Tensor& q, const at::Tensor& k, bool causal, const at::Tensor& key_lengths) {
  int64_t sq = q.size(2);
  int64_t sk = k.size(2);
  at::Tensor mask;
  auto index_options = at::TensorOptions().dtype(at::kLong).device(q.device());
  at::Tensor key_pos = at::arange(sk, index_options);
  if (causal) {
    at::Tensor query_pos = at::arange(sq, index_options).unsqueeze(1) + (sk - sq);
    mask = (key_pos.unsqueeze(0) <= query_pos).view({1, 1, sq, sk});
  }
  if (key_lengths.defined()) {
    at::Tensor lengths = key_lengths.to(q.device(), at::kLong).reshape({-1, 1, 1, 1});
    at::Tensor valid = key_pos.view({1, 1, 1, sk}) < lengths;
    mask = mask.defined() ? at::logical_and(mask, valid) : valid;
  }
  return mask;
}

at::Tensor eager_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                           const at::Tensor& mask) {
  // Low-precision inputs: accumulate scores and softmax in fp32 so that eager is a fair reference.
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)).to(at::kFloat) * scale;
  if (mask.defined()) scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  at::Tensor probs = at::softmax(scores, -1);
  // Rows with every key masked (possible with key_lengths of 0) produce NaN; they attend to nothing.
  if (mask.defined()) probs = at::nan_to_num(probs, 0.0);
  return at::matmul(probs.to(v.scalar_type()), v);
}

#if VLM_WITH_CUDA
constexpr bool kFlashBuilt = true;
#else
constexpr bool kFlashBuilt = false;
#endif

struct DeviceInfo {
  int sm_major = 0;
  int sm_minor = 0;
  bool kernel_image = false;
};

// Compute capability of q's device and whether the flash kernels load there, cached per device
// (each costs a driver call).
DeviceInfo device_info([[maybe_unused]] const c10::Device& where) {
#if VLM_WITH_CUDA
  if (!where.is_cuda()) return {};
  static std::mutex mutex;
  static std::vector<std::optional<DeviceInfo>> cache;
  int device = where.has_index() ? where.index() : 0;
  if (!where.has_index() && cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return {};
  }
  std::lock_guard lock(mutex);
  if (device >= static_cast<int>(cache.size())) cache.resize(device + 1);
  if (!cache[device]) {
    DeviceInfo info;
    if (cudaDeviceGetAttribute(&info.sm_major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&info.sm_minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
      cudaGetLastError();
      info = {};
    }
    info.kernel_image = info.sm_major >= 8 && flash::flash_kernels_loadable(device);
    cache[device] = info;
  }
  return *cache[device];
#else
  return {};
#endif
}

// Why flash cannot run anything in this setting (build, device, dtype), or empty when it can.
std::string flash_setting_unsupported_reason(const AttentionRequest& request, bool flash_built) {
  if (!flash_built) return "this build has no flash-attention kernel (built without CUDA)";
  if (!request.on_cuda) return "tensors are not on a CUDA device";
  if (request.sm_major < 8) {
    return "GPU sm_" + std::to_string(request.sm_major) + std::to_string(request.sm_minor) + " is older than sm_80";
  }
  if (!request.kernel_image) {
    return "the flash kernels have no code this GPU (sm_" + std::to_string(request.sm_major) +
           std::to_string(request.sm_minor) + ") can load";
  }
  if (request.dtype != c10::ScalarType::Half && request.dtype != c10::ScalarType::BFloat16) {
    return std::string("dtype ") + c10::toString(request.dtype) + " is not float16 or bfloat16";
  }
  return {};
}

// Why the kernel does not cover this call's shape, or empty when it does.
std::string flash_shape_unsupported_reason(const AttentionRequest& request) {
  if (request.head_dim != 32 && request.head_dim != 64 && request.head_dim != 128) {
    return "head dim " + std::to_string(request.head_dim) + " is not 32, 64 or 128";
  }
  if (!(request.scale > 0.0) || !std::isfinite(request.scale)) {
    return "softmax scale " + std::to_string(request.scale) + " is not positive";
  }
  return {};
}

void log_fallback_once(const std::string& reason) {
  static std::mutex mutex;
  static std::set<std::string> seen;
  std::lock_guard lock(mutex);
  if (seen.insert(reason).second) log::info("attention: using eager ({})", reason);
}

#if VLM_WITH_CUDA
// One info line per tuned shape bucket, so a log says which kernel tile served which shapes.
void log_flash_autotune_decisions() {
  static std::once_flag once;
  std::call_once(once, [] {
    flash::flash_autotuner().set_observer([](const flash::TuneDecision& decision) {
      std::string timings;
      for (const auto& t : decision.timings) {
        if (!timings.empty()) timings += ", ";
        timings += flash::flash_config_name(t.config);
        timings += t.ms >= 0 ? fmt::format(" {:.4f} ms", t.ms) : " failed: " + t.failure;
      }
      log::info("attention: flash autotune {} -> {} ({})", flash::describe(decision.key),
                flash::flash_config_name(decision.config), timings);
    });
  });
}
#endif

}  // namespace

AttentionBackend parse_attention_backend(std::string_view name) {
  if (name == "auto") return AttentionBackend::kAuto;
  if (name == "flash") return AttentionBackend::kFlash;
  if (name == "eager") return AttentionBackend::kEager;
  if (name == "sdpa") return AttentionBackend::kSdpa;
  throw Error(ErrorCode::kInvalidArgument,
              "attention backend must be auto, flash, eager or sdpa; got '" + std::string(name) + "'");
}

std::string_view attention_backend_name(AttentionBackend backend) {
  switch (backend) {
    case AttentionBackend::kAuto: return "auto";
    case AttentionBackend::kFlash: return "flash";
    case AttentionBackend::kEager: return "eager";
    case AttentionBackend::kSdpa: return "sdpa";
  }
  return "auto";
}

void set_default_attention_backend(AttentionBackend backend) { g_default_backend = backend; }
AttentionBackend default_attention_backend() { return g_default_backend; }

void set_flash_autotune([[maybe_unused]] bool enabled) {
#if VLM_WITH_CUDA
  flash::set_flash_autotune_enabled(enabled);
#endif
}

std::vector<std::string> available_attention_backends() {
  if (kFlashBuilt) return {"flash", "eager", "sdpa"};
  return {"eager", "sdpa"};
}

AttentionChoice choose_attention_backend(const AttentionRequest& request, AttentionBackend requested,
                                         bool flash_built) {
  if (requested == AttentionBackend::kEager || requested == AttentionBackend::kSdpa) return {requested, ""};
  // Asked for explicitly, flash refuses a setting it cannot run at all (the user can change device or
  // dtype) instead of silently running eager. A call whose shape the kernel does not cover runs eager
  // either way: DaViT's channel attention has "head dim" = tokens, and refusing it would make flash
  // unusable for Florence-2 as a whole.
  std::string reason = flash_setting_unsupported_reason(request, flash_built);
  if (!reason.empty() && requested == AttentionBackend::kFlash) {
    throw Error(ErrorCode::kUnavailable, "attention backend flash cannot run: " + reason);
  }
  if (reason.empty()) reason = flash_shape_unsupported_reason(request);
  if (reason.empty()) return {AttentionBackend::kFlash, ""};
  return {AttentionBackend::kEager, reason};
}

AttentionChoice check_attention_backend(AttentionBackend requested, const c10::Device& device, c10::ScalarType dtype,
                                        int64_t head_dim) {
  AttentionRequest request;
  request.on_cuda = device.is_cuda();
  const DeviceInfo info = device_info(device);
  request.sm_major = info.sm_major;
  request.sm_minor = info.sm_minor;
  request.kernel_image = info.kernel_image;
  request.dtype = dtype;
  request.head_dim = head_dim;
  request.scale = head_dim > 0 ? 1.0 / std::sqrt(static_cast<double>(head_dim)) : 1.0;
  return choose_attention_backend(
      request, requested == AttentionBackend::kAuto ? default_attention_backend() : requested, kFlashBuilt);
}

AttentionChoice choose_attention_backend(const at::Tensor& q, const at::Tensor& /*k*/,
                                         const AttentionOptions& options) {
  AttentionBackend requested =
      options.backend == AttentionBackend::kAuto ? default_attention_backend() : options.backend;
  AttentionRequest request;
  request.on_cuda = q.is_cuda();
  const DeviceInfo info = device_info(q.device());
  request.sm_major = info.sm_major;
  request.sm_minor = info.sm_minor;
  request.kernel_image = info.kernel_image;
  request.dtype = q.scalar_type();
  request.head_dim = q.dim() == 4 ? q.size(3) : 0;
  request.scale =
      options.scale.value_or(request.head_dim > 0 ? 1.0 / std::sqrt(static_cast<double>(request.head_dim)) : 1.0);
  return choose_attention_backend(request, requested, kFlashBuilt);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionOptions& options) {
  check_inputs(q, k, v);
  check_append(k, options);
  double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(3))));
  AttentionChoice choice = choose_attention_backend(q, k, options);
  if (!choice.fallback_reason.empty()) log_fallback_once(choice.fallback_reason);
#if VLM_WITH_CUDA
  if (choice.backend == AttentionBackend::kFlash) {
    log_flash_autotune_decisions();
    flash::FlashForwardOptions flash_options;
    flash_options.causal = options.causal;
    flash_options.key_lengths = options.key_lengths;
    if (options.append) {
      flash_options.new_k = options.append->key;
      flash_options.new_v = options.append->value;
      flash_options.position = options.append->position;
    }
    flash_options.kv_ready = options.kv_ready;
    return flash::flash_attention_forward(q, k, v, scale, flash_options);
  }
#endif
  const at::Tensor key_lengths = options.append ? append_with_index_copy(k, v, *options.append) : options.key_lengths;
  at::Tensor mask = build_mask(q, k, options.causal, key_lengths);
  if (choice.backend == AttentionBackend::kSdpa) {
    return at::scaled_dot_product_attention(q, k, v, mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt,
                                            0.0, false, scale);
  }
  return eager_attention(q, k, v, scale, mask);
}

}  // namespace vlm
