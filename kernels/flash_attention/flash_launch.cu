// Picks a config-table row and split count per shape, then calls that row's instantiation.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <array>
#include <atomic>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "flash_attention/flash_config.h"
#include "flash_attention/flash_params.h"
#include "vlm/error.h"

namespace vlm::flash {

// Defined in instantiations/*.cu, one file per (row, dtype).
template <int kConfig, typename Element>
void run_flash_config(const FlashFwdParams& params, int num_splits, cudaStream_t stream);

// Defined in instantiations/flash_decode_*.cu, one file per (dtype, head dim).
template <typename Element, int kHeadDim>
void run_flash_decode_dim(const FlashFwdParams& params, int device, cudaStream_t stream);

namespace {

using RunFn = void (*)(const FlashFwdParams&, int, cudaStream_t);

#ifdef VLM_FLASH_TUNING_CONFIGS
constexpr bool kWithTuning = true;
#else
constexpr bool kWithTuning = false;
#endif

template <int I, typename Element>
constexpr RunFn run_fn() {
  if constexpr (kFlashConfigs[I].role != ConfigRole::kTuning || kWithTuning) {
    return &run_flash_config<I, Element>;
  } else {
    return nullptr;
  }
}

template <typename Element, int... I>
constexpr std::array<RunFn, kNumFlashConfigs> make_table(std::integer_sequence<int, I...>) {
  return {run_fn<I, Element>()...};
}

constexpr auto kFp16Table = make_table<__half>(std::make_integer_sequence<int, kNumFlashConfigs>{});
constexpr auto kBf16Table = make_table<__nv_bfloat16>(std::make_integer_sequence<int, kNumFlashConfigs>{});

std::atomic<int> g_config_override{-1};
std::atomic<int> g_splits_override{0};

// Query rows up to this count take the one-warp decode config (memory bound, split over keys), those
// the single-pass decode kernel does not take (flash_decode_covers) or a bench override sends here.
constexpr int kDecodeMaxRows = 16;
// The single-pass decode kernel's query rows per (batch, head): a template parameter, 1-4.
constexpr int kDecodeKernelMaxRows = 4;

ConfigRole role_for(const FlashFwdParams& params) {
  return params.seqlen_q <= kDecodeMaxRows ? ConfigRole::kDecode : ConfigRole::kPrefill;
}

int sm_count(int device) {
  static std::mutex mutex;
  static std::array<int, 64> counts{};
  std::lock_guard lock(mutex);
  if (device < 0 || device >= static_cast<int>(counts.size())) return 108;
  if (counts[device] == 0) {
    int count = 0;
    if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || count <= 0) {
      count = 108;
    }
    counts[device] = count;
  }
  return counts[device];
}

// Compiled with the same targets as the attention kernels: if the driver has no code for this GPU
// for the probe, it has none for them either.
__global__ void flash_probe_kernel() {}

}  // namespace

bool flash_kernels_loadable(int device) {
  int current = 0;
  if (cudaGetDevice(&current) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  if (current != device && cudaSetDevice(device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  cudaFuncAttributes attributes{};
  const bool ok = cudaFuncGetAttributes(&attributes, flash_probe_kernel) == cudaSuccess;
  cudaGetLastError();
  if (current != device) cudaSetDevice(current);
  return ok;
}

std::vector<int> flash_candidate_configs(const FlashFwdParams& params) {
  const ConfigRole role = role_for(params);
  std::vector<int> candidates;
  for (int i = 0; i < kNumFlashConfigs; ++i) {
    if (kFlashConfigs[i].head_dim == params.head_dim && kFlashConfigs[i].role == role && flash_config_built(i)) {
      candidates.push_back(i);
    }
  }
  if (candidates.empty()) {
    throw Error(ErrorCode::kInternal, "flash attention: no " +
                                          std::string(role == ConfigRole::kDecode ? "decode" : "prefill") +
                                          " config for head dim " + std::to_string(params.head_dim));
  }
  return candidates;
}

void set_flash_config_override(int config_index) { g_config_override = config_index; }
int flash_config_override() { return g_config_override.load(); }
void set_flash_splits_override(int num_splits) { g_splits_override = num_splits; }
int flash_config_count() { return kNumFlashConfigs; }
const char* flash_config_name(int config_index) {
  if (config_index < 0 || config_index >= kNumFlashConfigs) return "invalid";
  return kFlashConfigs[config_index].name;
}
bool flash_config_built(int config_index) {
  return config_index >= 0 && config_index < kNumFlashConfigs && kFp16Table[config_index] != nullptr;
}

FlashFwdPlan plan_flash_fwd(const FlashFwdParams& params, int device, int config_index) {
  FlashFwdPlan plan;
  const int override_index = g_config_override.load();
  if (override_index >= 0 && flash_config_built(override_index) &&
      kFlashConfigs[override_index].head_dim == params.head_dim) {
    plan.config_index = override_index;
  } else if (config_index >= 0) {
    if (!flash_config_built(config_index) || kFlashConfigs[config_index].head_dim != params.head_dim) {
      throw Error(ErrorCode::kInternal, "flash attention: config " + std::to_string(config_index) +
                                            " is not built for head dim " + std::to_string(params.head_dim));
    }
    plan.config_index = config_index;
  } else {
    plan.config_index = flash_candidate_configs(params).front();
  }
  const FlashConfig& cfg = kFlashConfigs[plan.config_index];
  if (cfg.role == ConfigRole::kDecode) {
    // Split the keys only while the grid is short of two one-warp blocks per SM, keeping at least
    // two key tiles per split. Measured (H200, B24 H12 q1 k600: 288 blocks): 1 split 15.9 us,
    // 2 splits 17.9 us, 4 splits 18.6 us; the combine pass costs more than a fuller grid gains.
    const int64_t rows_blocks =
        static_cast<int64_t>(params.batch) * params.heads * ((params.seqlen_q + cfg.block_m - 1) / cfg.block_m);
    const int key_blocks = (params.seqlen_k + cfg.block_n - 1) / cfg.block_n;
    const int64_t target_blocks = static_cast<int64_t>(sm_count(device)) * 2;
    int splits = 1;
    if (rows_blocks < target_blocks) {
      splits = static_cast<int>((target_blocks + rows_blocks - 1) / rows_blocks);
      splits = std::min(splits, std::max(1, key_blocks / 2));
      splits = std::min(splits, 64);
    }
    if (g_splits_override.load() > 0) splits = std::min(g_splits_override.load(), std::max(1, key_blocks));
    plan.num_splits = std::max(1, splits);
  }
  if (plan.num_splits > 1) {
    const int64_t rows = static_cast<int64_t>(plan.num_splits) * params.batch * params.heads * params.seqlen_q;
    plan.workspace_bytes = rows * (params.head_dim + 1) * static_cast<int64_t>(sizeof(float));
  }
  return plan;
}

bool flash_decode_covers(const FlashFwdParams& params) {
  const bool head_dim = params.head_dim == 32 || params.head_dim == 64 || params.head_dim == 128;
  return head_dim && params.seqlen_q >= 1 && params.seqlen_q <= kDecodeKernelMaxRows &&
         !(params.causal && params.seqlen_q > 1);
}

bool flash_decode_selected(const FlashFwdParams& params) {
  if (!flash_decode_covers(params)) return false;
  const int override_index = g_config_override.load();
  return !(override_index >= 0 && flash_config_built(override_index) &&
           kFlashConfigs[override_index].head_dim == params.head_dim);
}

void run_flash_decode(const FlashFwdParams& params, int device, cudaStream_t stream) {
  if (!flash_decode_covers(params)) {
    throw Error(ErrorCode::kInternal, "flash attention: the decode kernel does not cover " +
                                          std::to_string(params.seqlen_q) + " query rows of head dim " +
                                          std::to_string(params.head_dim) + (params.causal ? ", causal" : ""));
  }
  switch (params.head_dim) {
    case 32:
      params.is_bf16 ? run_flash_decode_dim<__nv_bfloat16, 32>(params, device, stream)
                     : run_flash_decode_dim<__half, 32>(params, device, stream);
      return;
    case 64:
      params.is_bf16 ? run_flash_decode_dim<__nv_bfloat16, 64>(params, device, stream)
                     : run_flash_decode_dim<__half, 64>(params, device, stream);
      return;
    default:
      params.is_bf16 ? run_flash_decode_dim<__nv_bfloat16, 128>(params, device, stream)
                     : run_flash_decode_dim<__half, 128>(params, device, stream);
      return;
  }
}

void run_flash_fwd(FlashFwdParams params, const FlashFwdPlan& plan, cudaStream_t stream) {
  if (!flash_config_built(plan.config_index) || kFlashConfigs[plan.config_index].head_dim != params.head_dim) {
    throw Error(ErrorCode::kInternal, "flash attention: config " + std::to_string(plan.config_index) +
                                          " is not built for head dim " + std::to_string(params.head_dim));
  }
  params.num_splits = plan.num_splits;
  const RunFn fn = params.is_bf16 ? kBf16Table[plan.config_index] : kFp16Table[plan.config_index];
  fn(params, plan.num_splits, stream);
}

}  // namespace vlm::flash
