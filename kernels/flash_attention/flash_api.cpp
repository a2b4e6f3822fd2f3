// Checks tensors at the kernel boundary, fills FlashFwdParams and launches on torch's stream.
#include "flash_attention/flash_api.h"

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "flash_attention/flash_params.h"
#include "vlm/error.h"

namespace vlm::flash {
namespace {

std::string describe(const at::Tensor& t) {
  return c10::str(t.sizes(), " ", t.scalar_type(), " on ", t.device(), " strides ", t.strides());
}

// cp.async copies 16-byte rows: the last dim must be contiguous and every other stride and the base
// pointer 8-element aligned. Anything else is copied once into a contiguous tensor.
bool is_kernel_layout(const at::Tensor& t) {
  return t.stride(3) == 1 && t.stride(0) % 8 == 0 && t.stride(1) % 8 == 0 && t.stride(2) % 8 == 0 &&
         reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
}
at::Tensor kernel_layout(const at::Tensor& t) { return is_kernel_layout(t) ? t : t.contiguous(); }

// An append's tensors against the caches k and v ([B, H, L, D]).
void check_append(const at::Tensor& k, const at::Tensor& v, const FlashForwardOptions& options) {
  const at::Tensor& new_k = options.new_k;
  const at::Tensor& new_v = options.new_v;
  const at::Tensor& position = options.position;
  if (!new_k.defined() || !new_v.defined() || !position.defined()) {
    throw Error(ErrorCode::kInvalidArgument, "flash attention's cache append needs new_k, new_v and position, got " +
                                                 std::string(new_k.defined() ? "" : "no ") + "new_k, " +
                                                 (new_v.defined() ? "" : "no ") + "new_v, " +
                                                 (position.defined() ? "" : "no ") + "position");
  }
  const std::vector<int64_t> row{k.size(0), k.size(1), 1, k.size(3)};
  if (new_k.sizes() != at::IntArrayRef(row) || new_v.sizes() != at::IntArrayRef(row) ||
      new_k.scalar_type() != k.scalar_type() || new_v.scalar_type() != k.scalar_type() ||
      new_k.device() != k.device() || new_v.device() != k.device()) {
    throw Error(ErrorCode::kInvalidArgument, "flash attention's cache append needs new_k and new_v " +
                                                 c10::str(at::IntArrayRef(row)) + " like k " + describe(k) + ", got " +
                                                 describe(new_k) + " and " + describe(new_v));
  }
  if (position.numel() != 1 || position.scalar_type() != at::kLong || position.device() != k.device()) {
    throw Error(ErrorCode::kInvalidArgument,
                "flash attention's append position must be one int64 on k's device, got " + describe(position));
  }
  if (options.key_lengths.defined()) {
    throw Error(ErrorCode::kInvalidArgument,
                "flash attention takes key_lengths or a cache append (length position + 1), not both");
  }
  if (k.size(2) == 0) throw Error(ErrorCode::kInvalidArgument, "flash attention's cache append got an empty cache");
  if (at::has_internal_overlap(k) == at::MemOverlap::Yes || at::has_internal_overlap(v) == at::MemOverlap::Yes) {
    throw Error(ErrorCode::kInvalidArgument,
                "flash attention's cache append writes k and v in place; they overlap "
                "themselves: k " +
                    describe(k) + ", v " + describe(v));
  }
}

// Split-KV partials for plans that split the keys; an undefined tensor (and params untouched) otherwise.
at::Tensor attach_workspace(FlashFwdParams& params, const FlashFwdPlan& plan, int device) {
  if (plan.num_splits <= 1) return {};
  const int64_t rows = static_cast<int64_t>(plan.num_splits) * params.batch * params.heads * params.seqlen_q;
  at::Tensor workspace =
      at::empty({rows * (params.head_dim + 1)}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA, device));
  params.o_partial = workspace.data_ptr<float>();
  params.lse_partial = params.o_partial + rows * params.head_dim;
  return workspace;
}

struct EventDeleter {
  void operator()(CUevent_st* event) const { cudaEventDestroy(event); }
};
using Event = std::unique_ptr<CUevent_st, EventDeleter>;

Event make_event() {
  cudaEvent_t event = nullptr;
  if (cudaEventCreate(&event) != cudaSuccess) {
    cudaGetLastError();
    throw Error(ErrorCode::kInternal, "flash autotune: cannot create a CUDA event");
  }
  return Event(event);
}

// Milliseconds per call of one config on these very inputs (the output is rewritten by the real run
// that follows): one warm-up call, then the mean of three between CUDA events on the caller's stream.
double time_config(const FlashFwdParams& params, int device, int config, cudaStream_t stream) {
  const FlashFwdPlan plan = plan_flash_fwd(params, device, config);
  FlashFwdParams timed = params;
  const at::Tensor workspace = attach_workspace(timed, plan, device);
  constexpr int kReps = 3;
  const Event start = make_event();
  const Event stop = make_event();
  run_flash_fwd(timed, plan, stream);
  cudaEventRecord(start.get(), stream);
  for (int i = 0; i < kReps; ++i) run_flash_fwd(timed, plan, stream);
  cudaEventRecord(stop.get(), stream);
  float ms = -1.0f;
  if (cudaEventSynchronize(stop.get()) != cudaSuccess ||
      cudaEventElapsedTime(&ms, start.get(), stop.get()) != cudaSuccess) {
    cudaGetLastError();
    throw Error(ErrorCode::kInternal, "flash autotune: timing config " + std::to_string(config) + " failed");
  }
  return ms / kReps;
}

// The config to run: the bench's override, the cached or freshly timed winner, or -1 (the default)
// when there is nothing to choose, autotuning is off, or the stream is being captured into a graph
// (no synchronisation allowed there). A cache hit costs one map lookup.
int choose_config(const FlashFwdParams& params, int device, cudaStream_t stream) {
  if (flash_config_override() >= 0 || !flash_autotune_enabled()) return -1;
  const TuneKey key =
      make_tune_key(device, params.is_bf16, params.head_dim, params.causal, params.key_lengths != nullptr,
                    params.seqlen_q, params.seqlen_k, static_cast<int64_t>(params.batch) * params.heads);
  if (const std::optional<int> cached = flash_autotuner().find(key)) return *cached;
  const std::vector<int> candidates = flash_candidate_configs(params);
  if (candidates.size() < 2) return -1;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture) != cudaSuccess || capture != cudaStreamCaptureStatusNone) {
    cudaGetLastError();
    return -1;
  }
  return flash_autotuner().choose(key, candidates,
                                  [&](int config) { return time_config(params, device, config, stream); });
}

}  // namespace

FlashAutotuner& flash_autotuner() {
  static FlashAutotuner tuner;
  return tuner;
}

namespace {
std::atomic<bool> autotune_enabled{true};
}  // namespace

bool flash_autotune_enabled() { return autotune_enabled.load(std::memory_order_relaxed); }
void set_flash_autotune_enabled(bool enabled) { autotune_enabled.store(enabled, std::memory_order_relaxed); }

namespace {

std::string query_device_unsupported_reason(int device) {
  int major = 0;
  int minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    cudaGetLastError();
    return "cannot query CUDA device " + std::to_string(device);
  }
  if (major < 8) {
    return "GPU sm_" + std::to_string(major) + std::to_string(minor) + " is older than sm_80";
  }
  if (!flash_kernels_loadable(device)) {
    return "the flash kernels have no code this GPU (sm_" + std::to_string(major) + std::to_string(minor) +
           ") can load";
  }
  return {};
}

}  // namespace

std::string flash_device_unsupported_reason(int device) {
  // Asked on every call: a device's capability and the kernel image it loads never change in a
  // process, and the queries cost two attribute reads and a function-attributes lookup each time.
  static std::mutex mutex;
  static std::map<int, std::string> reasons;
  const std::lock_guard lock(mutex);
  auto found = reasons.find(device);
  if (found == reasons.end()) found = reasons.emplace(device, query_device_unsupported_reason(device)).first;
  return found->second;
}

at::Tensor flash_attention_forward(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in, double scale,
                                   const FlashForwardOptions& options) {
  if (q_in.dim() != 4 || k_in.dim() != 4 || v_in.dim() != 4) {
    throw Error(ErrorCode::kInvalidArgument, "flash attention expects 4-d q, k, v [B, H, S, D], got q " +
                                                 describe(q_in) + ", k " + describe(k_in) + ", v " + describe(v_in));
  }
  if (!q_in.is_cuda() || k_in.device() != q_in.device() || v_in.device() != q_in.device()) {
    throw Error(ErrorCode::kInvalidArgument, "flash attention needs q, k, v on one CUDA device, got q " +
                                                 describe(q_in) + ", k " + describe(k_in) + ", v " + describe(v_in));
  }
  const auto dtype = q_in.scalar_type();
  if ((dtype != at::kHalf && dtype != at::kBFloat16) || k_in.scalar_type() != dtype || v_in.scalar_type() != dtype) {
    throw Error(ErrorCode::kInvalidArgument, "flash attention needs q, k, v all float16 or all bfloat16, got q " +
                                                 describe(q_in) + ", k " + describe(k_in) + ", v " + describe(v_in));
  }
  const int64_t batch = q_in.size(0), heads = q_in.size(1), seqlen_q = q_in.size(2), head_dim = q_in.size(3);
  const int64_t seqlen_k = k_in.size(2);
  if (k_in.size(0) != batch || k_in.size(1) != heads || k_in.size(3) != head_dim || v_in.sizes() != k_in.sizes()) {
    throw Error(ErrorCode::kInvalidArgument, "flash attention shapes disagree: q " + describe(q_in) + ", k " +
                                                 describe(k_in) + ", v " + describe(v_in));
  }
  if (head_dim != 32 && head_dim != 64 && head_dim != 128) {
    throw Error(ErrorCode::kInvalidArgument,
                "flash attention supports head dims 32, 64 and 128, got " + std::to_string(head_dim));
  }
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  if (batch * heads * ((seqlen_q + 15) / 16) > kIntMax || seqlen_k > kIntMax || seqlen_q > kIntMax) {
    throw Error(ErrorCode::kInvalidArgument, "flash attention sizes overflow 32-bit indexing: q " + describe(q_in));
  }
  if (!(scale > 0.0) || !std::isfinite(scale)) {
    throw Error(ErrorCode::kInvalidArgument,
                "flash attention needs a positive finite scale, got " + std::to_string(scale));
  }
  const bool append = options.new_k.defined() || options.new_v.defined() || options.position.defined();
  if (append) check_append(k_in, v_in, options);
  const c10::cuda::CUDAGuard guard(q_in.device());
  const std::string device_reason = flash_device_unsupported_reason(q_in.get_device());
  if (!device_reason.empty()) throw Error(ErrorCode::kUnavailable, "flash attention cannot run: " + device_reason);

  FlashFwdParams params;
  params.batch = static_cast<int>(batch);
  params.heads = static_cast<int>(heads);
  params.seqlen_q = static_cast<int>(seqlen_q);
  params.seqlen_k = static_cast<int>(seqlen_k);
  params.head_dim = static_cast<int>(head_dim);
  params.scale = static_cast<float>(scale);
  params.scale_log2 = static_cast<float>(scale * M_LOG2E);
  params.causal = options.causal;
  params.is_bf16 = dtype == at::kBFloat16;
  // The decode kernel writes an append into the caches themselves: they must need no copy.
  const bool decode = flash_decode_selected(params) && (!append || (is_kernel_layout(k_in) && is_kernel_layout(v_in)));

  at::Tensor lengths;
  if (append && !decode) {
    // The config table has no append: write the row first, then mask as key_lengths = position + 1.
    const at::Tensor index = options.position.reshape({1});
    k_in.index_copy_(2, index, options.new_k);
    v_in.index_copy_(2, index, options.new_v);
    lengths = (index + 1).to(at::kInt).expand({batch}).contiguous();
  } else if (options.key_lengths.defined()) {
    const at::Tensor& key_lengths = options.key_lengths;
    if (key_lengths.dim() != 1 || key_lengths.size(0) != batch ||
        (key_lengths.scalar_type() != at::kInt && key_lengths.scalar_type() != at::kLong)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "key_lengths must be int32 or int64 [" + std::to_string(batch) + "], got " + describe(key_lengths));
    }
    lengths = key_lengths.to(q_in.device(), at::kInt).contiguous();
  }

  const at::Tensor q = kernel_layout(q_in);
  const at::Tensor k = kernel_layout(k_in);
  const at::Tensor v = kernel_layout(v_in);
  at::Tensor out;
  if (options.out.defined()) {
    const at::Tensor& out_in = options.out;
    if (out_in.sizes() != q_in.sizes() || out_in.scalar_type() != dtype || out_in.device() != q_in.device() ||
        kernel_layout(out_in).data_ptr() != out_in.data_ptr()) {
      throw Error(ErrorCode::kInvalidArgument, "flash attention out must match q " + describe(q_in) +
                                                   " with a kernel-friendly layout, got " + describe(out_in));
    }
    out = out_in.transpose(1, 2);  // [B, Sq, H, D] view, the layout the code below fills
  } else {
    // [B, Sq, H, D] storage: what the next projection wants, returned as a [B, H, Sq, D] view.
    out = at::empty({batch, seqlen_q, heads, head_dim}, q.options());
  }
  if (out.numel() == 0) return out.transpose(1, 2);

  params.q = q.data_ptr();
  params.k = k.data_ptr();
  params.v = v.data_ptr();
  params.o = out.data_ptr();
  params.q_batch_stride = q.stride(0);
  params.q_head_stride = q.stride(1);
  params.q_row_stride = q.stride(2);
  params.k_batch_stride = k.stride(0);
  params.k_head_stride = k.stride(1);
  params.k_row_stride = k.stride(2);
  params.v_batch_stride = v.stride(0);
  params.v_head_stride = v.stride(1);
  params.v_row_stride = v.stride(2);
  params.o_batch_stride = out.stride(0);
  params.o_head_stride = out.stride(2);
  params.o_row_stride = out.stride(1);
  params.key_lengths = lengths.defined() ? lengths.data_ptr<int>() : nullptr;

  const cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
  if (decode) {
    at::Tensor new_k;
    at::Tensor new_v;
    if (append) {
      new_k = kernel_layout(options.new_k);
      new_v = kernel_layout(options.new_v);
      params.position = options.position.data_ptr<int64_t>();
      params.new_k = new_k.data_ptr();
      params.new_v = new_v.data_ptr();
      params.new_k_batch_stride = new_k.stride(0);
      params.new_k_head_stride = new_k.stride(1);
      params.new_v_batch_stride = new_v.stride(0);
      params.new_v_head_stride = new_v.stride(1);
    }
    params.kv_ready = options.kv_ready;
    run_flash_decode(params, q.get_device(), stream);
    return out.transpose(1, 2);
  }
  const FlashFwdPlan plan = plan_flash_fwd(params, q.get_device(), choose_config(params, q.get_device(), stream));
  const at::Tensor workspace = attach_workspace(params, plan, q.get_device());
  run_flash_fwd(params, plan, stream);
  return out.transpose(1, 2);
}

at::Tensor flash_attention_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                                   bool causal, const at::Tensor& key_lengths, const at::Tensor& out) {
  FlashForwardOptions options;
  options.causal = causal;
  options.key_lengths = key_lengths;
  options.out = out;
  return flash_attention_forward(q, k, v, scale, options);
}

}  // namespace vlm::flash
