// GPU correctness check for the flash-attention kernels (ctest label gpu; tools/gpu/attention.sh on the
// GPU machine). Exits 77 (ctest: skipped) where no CUDA device is visible.
//
// Every dtype x head dim x mask x (query length, key length) combination, on random inputs in three
// memory layouts, with the output poisoned (NaN) before each run. Reference: fp32 eager attention on
// the same inputs. Pass: no NaN left, and max |ours - ref| <= 2 * max |libtorch same-dtype - ref|
// + 1e-5 (the FlashAttention test rule; libtorch runs scaled_dot_product_attention in fp16/bf16).
//
// The single-pass decode kernel (1-4 query rows) gets its own sweep: every key count from 1 to 4096
// around its pass sizes, key lengths of 0 (zeros out) and below the key count, B x H grids from 1 x 12
// to 96 x 16, and the cache append (output and cache, written at the position only); then it is timed
// against the split-KV config + combine it replaces, replayed as CUDA graphs like the decoder's steps.
//
//   flash_attention_check            full sweep
//   flash_attention_check --small    a few small shapes, for compute-sanitizer
//   flash_attention_check --config N the full sweep of config-table row N's head dim, forced to row N
//                                    (checks tuning candidates before they ship)
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "flash_attention/flash_api.h"
#include "flash_attention/flash_config.h"
#include "flash_attention/flash_params.h"

namespace {

enum class Mask { kNone, kCausal, kLengths, kCausalLengths };
const char* mask_name(Mask m) {
  switch (m) {
    case Mask::kNone: return "none";
    case Mask::kCausal: return "causal";
    case Mask::kLengths: return "lengths";
    case Mask::kCausalLengths: return "causal+lengths";
  }
  return "?";
}
bool is_causal(Mask m) { return m == Mask::kCausal || m == Mask::kCausalLengths; }
bool has_lengths(Mask m) { return m == Mask::kLengths || m == Mask::kCausalLengths; }

// Bool [B, 1, Sq, Sk], true where allowed (bottom-right causal, right padding), or undefined.
at::Tensor build_mask(int64_t sq, int64_t sk, bool causal, const at::Tensor& lengths, const at::Device& device) {
  auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor key_pos = at::arange(sk, opts);
  at::Tensor mask;
  if (causal) mask = (key_pos.unsqueeze(0) <= at::arange(sq, opts).unsqueeze(1) + (sk - sq)).view({1, 1, sq, sk});
  if (lengths.defined()) {
    at::Tensor valid = key_pos.view({1, 1, 1, sk}) < lengths.to(device, at::kLong).view({-1, 1, 1, 1});
    mask = mask.defined() ? at::logical_and(mask, valid) : valid;
  }
  return mask;
}

at::Tensor reference_fp32(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                          const at::Tensor& mask) {
  at::Tensor s = at::matmul(q.to(at::kFloat), k.to(at::kFloat).transpose(-2, -1)) * scale;
  if (mask.defined()) s = s.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  at::Tensor p = at::nan_to_num(at::softmax(s, -1), 0.0);
  return at::matmul(p, v.to(at::kFloat));
}

// q, k, v as [B, H, S, D] views of three layouts the models produce.
struct Qkv {
  at::Tensor q, k, v;
};
Qkv make_inputs(int layout, int64_t b, int64_t h, int64_t sq, int64_t sk, int64_t d, at::ScalarType dtype) {
  auto opts = at::TensorOptions().dtype(dtype).device(at::kCUDA);
  if (layout == 0) {  // contiguous [B, H, S, D]
    return {at::randn({b, h, sq, d}, opts), at::randn({b, h, sk, d}, opts), at::randn({b, h, sk, d}, opts)};
  }
  if (layout == 1) {  // [B, S, H, D] transposed views, no copy
    return {at::randn({b, sq, h, d}, opts).transpose(1, 2), at::randn({b, sk, h, d}, opts).transpose(1, 2),
            at::randn({b, sk, h, d}, opts).transpose(1, 2)};
  }
  // packed projections [B, S, 3, H, D] (q from one, k/v from another: cross-attention shapes)
  at::Tensor qp = at::randn({b, sq, 3, h, d}, opts);
  at::Tensor kvp = at::randn({b, sk, 2, h, d}, opts);
  return {qp.select(2, 1).transpose(1, 2), kvp.select(2, 0).transpose(1, 2), kvp.select(2, 1).transpose(1, 2)};
}

struct Totals {
  int cases = 0;
  int failures = 0;
};

void run_case(Totals& totals, at::ScalarType dtype, int64_t d, Mask mask_kind, int64_t sq, int64_t sk, int layout,
              bool compare_libtorch, double scale_override = 0.0) {
  const int64_t b = 2;
  const int64_t h = 3;
  Qkv in = make_inputs(layout, b, h, sq, sk, d, dtype);
  const double scale = scale_override > 0.0 ? scale_override : 1.0 / std::sqrt(static_cast<double>(d));
  at::Tensor lengths;
  if (has_lengths(mask_kind)) {
    // One full row and one shorter random length (>= 1), int32 on the host like a request batch.
    lengths = at::empty({b}, at::kInt);
    lengths[0] = static_cast<int>(sk);
    lengths[1] = static_cast<int>(1 + (sk > 1 ? at::randint(sk - 1, {1}).item<int64_t>() : 0));
  }
  const bool causal = is_causal(mask_kind);
  at::Tensor mask = build_mask(sq, sk, causal, lengths, in.q.device());
  at::Tensor ref = reference_fp32(in.q, in.k, in.v, scale, mask);

  at::Tensor out = at::full({b, sq, h, d}, std::numeric_limits<float>::quiet_NaN(), in.q.options()).transpose(1, 2);
  vlm::flash::flash_attention_forward(in.q, in.k, in.v, scale, causal, lengths, out);
  const bool unwritten = at::isnan(out).any().item<bool>();
  const double err = (out.to(at::kFloat) - ref).abs().max().item<double>();

  double torch_err = 0.0;
  double bound = 0.0;
  if (compare_libtorch) {
    at::Tensor torch_out = at::scaled_dot_product_attention(
        in.q, in.k, in.v, mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt, 0.0, false, scale);
    torch_out = at::nan_to_num(torch_out, 0.0);
    torch_err = (torch_out.to(at::kFloat) - ref).abs().max().item<double>();
    bound = 2.0 * torch_err + 1e-5;
  } else {
    bound = dtype == at::kHalf ? 4e-3 : 3e-2;  // sanitizer runs: fixed bound, fewer foreign kernels
  }
  const bool ok = !unwritten && err <= bound;
  ++totals.cases;
  if (!ok) ++totals.failures;
  if (!ok || std::getenv("VLM_CHECK_VERBOSE") != nullptr) {
    std::printf("%s %s d=%ld mask=%s sq=%ld sk=%ld layout=%d scale=%.4f: err %.3g libtorch %.3g bound %.3g%s\n",
                ok ? "ok  " : "FAIL", dtype == at::kHalf ? "fp16" : "bf16", static_cast<long>(d), mask_name(mask_kind),
                static_cast<long>(sq), static_cast<long>(sk), layout, scale, err, torch_err, bound,
                unwritten ? " UNWRITTEN (NaN left)" : "");
  }
}

// A key length of 0 leaves every row with nothing to attend to: eager returns zeros there.
void run_zero_length_case(Totals& totals) {
  auto opts = at::TensorOptions().dtype(at::kHalf).device(at::kCUDA);
  at::Tensor q = at::randn({2, 2, 9, 64}, opts), k = at::randn({2, 2, 33, 64}, opts),
             v = at::randn({2, 2, 33, 64}, opts);
  at::Tensor lengths = at::tensor({0, 33}, at::kLong);
  at::Tensor out = at::full({2, 2, 9, 64}, std::numeric_limits<float>::quiet_NaN(), opts);
  vlm::flash::flash_attention_forward(q, k, v, 0.125, false, lengths, out);
  at::Tensor ref = reference_fp32(q, k, v, 0.125, build_mask(9, 33, false, lengths, q.device()));
  const bool zeros = out[0].to(at::kFloat).abs().max().item<double>() == 0.0;
  const double err = (out.to(at::kFloat) - ref).abs().max().item<double>();
  ++totals.cases;
  if (!zeros || !(err < 4e-3)) {
    ++totals.failures;
    std::printf("FAIL zero key length: batch 0 all zeros %d, err %.3g\n", zeros, err);
  }
}

// Bound on our error: twice libtorch's same-dtype error against the fp32 reference (sdpa; rows with
// nothing visible give NaN there, zeros in eager and ours), or a fixed one for sanitizer runs.
double error_bound(const Qkv& in, double scale, const at::Tensor& mask, const at::Tensor& ref, bool compare_libtorch,
                   double* torch_err) {
  *torch_err = 0.0;
  if (!compare_libtorch) return in.q.scalar_type() == at::kHalf ? 4e-3 : 3e-2;
  at::Tensor torch_out = at::scaled_dot_product_attention(
      in.q, in.k, in.v, mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt, 0.0, false, scale);
  *torch_err = (at::nan_to_num(torch_out, 0.0).to(at::kFloat) - ref).abs().max().item<double>();
  return 2.0 * *torch_err + 1e-5;
}

// Key lengths for a decode case, int32 on the host: row 0 random in [1, sk], row 1 zero (nothing
// visible: zeros out), row 2 all keys, and so on; one row alone gets a random length below sk.
at::Tensor decode_lengths(int64_t b, int64_t sk) {
  at::Tensor lengths = at::empty({b}, at::kInt);
  for (int64_t i = 0; i < b; ++i) {
    const int64_t random = 1 + at::randint(sk, {1}).item<int64_t>();
    const int64_t below = sk > 1 ? 1 + at::randint(sk - 1, {1}).item<int64_t>() : 0;
    lengths[i] = static_cast<int>(b == 1 ? below : i % 3 == 0 ? random : i % 3 == 1 ? 0 : sk);
  }
  return lengths;
}

// The decode kernel (1-4 query rows; with causal only 1) against the fp32 reference.
void run_decode_case(Totals& totals, at::ScalarType dtype, int64_t d, int64_t sq, int64_t sk, int64_t b, int64_t h,
                     int layout, bool with_lengths, bool causal, bool kv_ready, bool compare_libtorch) {
  Qkv in = make_inputs(layout, b, h, sq, sk, d, dtype);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const at::Tensor lengths = with_lengths ? decode_lengths(b, sk) : at::Tensor();
  const at::Tensor mask = build_mask(sq, sk, causal, lengths, in.q.device());
  const at::Tensor ref = reference_fp32(in.q, in.k, in.v, scale, mask);

  vlm::flash::FlashForwardOptions options;
  options.causal = causal;
  options.key_lengths = lengths;
  options.kv_ready = kv_ready;
  options.out = at::full({b, sq, h, d}, std::numeric_limits<float>::quiet_NaN(), in.q.options()).transpose(1, 2);
  vlm::flash::flash_attention_forward(in.q, in.k, in.v, scale, options);
  const at::Tensor& out = options.out;
  const bool unwritten = at::isnan(out).any().item<bool>();
  const double err = (out.to(at::kFloat) - ref).abs().max().item<double>();
  bool zeros = true;  // rows with key length 0 are exactly 0
  for (int64_t i = 0; lengths.defined() && i < b; ++i) {
    if (lengths[i].item<int>() == 0) zeros = zeros && out[i].abs().max().item<double>() == 0.0;
  }
  double torch_err = 0.0;
  const double bound = error_bound(in, scale, mask, ref, compare_libtorch, &torch_err);
  const bool ok = !unwritten && zeros && err <= bound;
  ++totals.cases;
  if (!ok) ++totals.failures;
  if (!ok || std::getenv("VLM_CHECK_VERBOSE") != nullptr) {
    std::printf("%s decode %s d=%ld sq=%ld sk=%ld b=%ld h=%ld layout=%d%s%s%s: err %.3g libtorch %.3g bound %.3g%s%s\n",
                ok ? "ok  " : "FAIL", dtype == at::kHalf ? "fp16" : "bf16", static_cast<long>(d), static_cast<long>(sq),
                static_cast<long>(sk), static_cast<long>(b), static_cast<long>(h), layout,
                with_lengths ? " lengths" : "", causal ? " causal" : "", kv_ready ? " kv_ready" : "", err, torch_err,
                bound, unwritten ? " UNWRITTEN (NaN left)" : "", zeros ? "" : " NONZERO at key length 0");
  }
}

// The decode config of the table for head dim d (the split-KV kernel + combine the decode kernel
// replaces), or -1.
int table_decode_config(int64_t d) {
  for (int i = 0; i < vlm::flash::kNumFlashConfigs; ++i) {
    if (vlm::flash::kFlashConfigs[i].role == vlm::flash::ConfigRole::kDecode &&
        vlm::flash::kFlashConfigs[i].head_dim == d) {
      return i;
    }
  }
  return -1;
}

// Restores the bench override when a case that forces the table ends.
struct OverrideScope {
  int saved = vlm::flash::flash_config_override();
  explicit OverrideScope(int config) {
    if (config >= 0) vlm::flash::set_flash_config_override(config);
  }
  ~OverrideScope() { vlm::flash::set_flash_config_override(saved); }
  OverrideScope(const OverrideScope&) = delete;
  OverrideScope& operator=(const OverrideScope&) = delete;
};

// A decode step's cache append, as Florence-2's step makes it: caches [2, B, H, L, D] (KvCache::self's
// layer slice), the step's new key and value strided views of a fused [B, 1, 3 * H * D] projection.
// Checks the output against the reference on the expected caches, and the caches bit for bit: the
// new rows at `position`, every other row untouched. `force_table` runs it through the config table
// (index_copy_ then the split-KV config), the path for shapes the decode kernel does not take.
// A position past the cache (out_of_range) writes nothing and attends nothing: zeros.
void run_append_case(Totals& totals, at::ScalarType dtype, int64_t d, int64_t sq, int64_t cache_len, int64_t position,
                     int64_t b, int64_t h, bool force_table, bool scalar_position, bool compare_libtorch) {
  const bool out_of_range = position >= cache_len;
  auto opts = at::TensorOptions().dtype(dtype).device(at::kCUDA);
  const at::Tensor caches = at::randn({2, b, h, cache_len, d}, opts);
  const at::Tensor k_cache = caches[0];
  const at::Tensor v_cache = caches[1];
  const at::Tensor projection = at::randn({b, 1, 3 * h * d}, opts);
  auto head_view = [&](int64_t part) {
    return projection.narrow(-1, part * h * d, h * d).view({b, 1, h, d}).transpose(1, 2);
  };
  const at::Tensor new_k = head_view(1);
  const at::Tensor new_v = head_view(2);
  const at::Tensor q = sq == 1 ? head_view(0) : at::randn({b, sq, h * d}, opts).view({b, sq, h, d}).transpose(1, 2);
  at::Tensor expected = caches.clone();
  if (!out_of_range) {
    expected[0].narrow(2, position, 1).copy_(new_k);
    expected[1].narrow(2, position, 1).copy_(new_v);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const at::Tensor lengths = at::full({b}, out_of_range ? 0 : position + 1, at::kInt);
  const at::Tensor mask = build_mask(sq, cache_len, false, lengths, q.device());
  const Qkv reference_in{q, expected[0], expected[1]};
  const at::Tensor ref = reference_fp32(q, expected[0], expected[1], scale, mask);

  vlm::flash::FlashForwardOptions options;
  options.new_k = new_k;
  options.new_v = new_v;
  options.position = at::full(scalar_position ? std::vector<int64_t>{} : std::vector<int64_t>{1}, position,
                              at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
  options.out = at::full({b, sq, h, d}, std::numeric_limits<float>::quiet_NaN(), opts).transpose(1, 2);
  {
    const OverrideScope scope(force_table ? table_decode_config(d) : -1);
    vlm::flash::flash_attention_forward(q, k_cache, v_cache, scale, options);
  }
  const at::Tensor& out = options.out;
  const bool unwritten = at::isnan(out).any().item<bool>();
  const double err = (out.to(at::kFloat) - ref).abs().max().item<double>();
  const bool cache_ok = at::equal(caches, expected);
  const bool zeros = !out_of_range || out.abs().max().item<double>() == 0.0;
  double torch_err = 0.0;
  const double bound = error_bound(reference_in, scale, mask, ref, compare_libtorch, &torch_err);
  const bool ok = !unwritten && cache_ok && zeros && err <= bound;
  ++totals.cases;
  if (!ok) ++totals.failures;
  if (!ok || std::getenv("VLM_CHECK_VERBOSE") != nullptr) {
    std::printf(
        "%s append %s d=%ld sq=%ld cache=%ld position=%ld b=%ld h=%ld%s%s: err %.3g libtorch %.3g bound "
        "%.3g%s%s%s\n",
        ok ? "ok  " : "FAIL", dtype == at::kHalf ? "fp16" : "bf16", static_cast<long>(d), static_cast<long>(sq),
        static_cast<long>(cache_len), static_cast<long>(position), static_cast<long>(b), static_cast<long>(h),
        force_table ? " table" : "", scalar_position ? " position[]" : "", err, torch_err, bound,
        unwritten ? " UNWRITTEN (NaN left)" : "", cache_ok ? "" : " CACHE WRONG",
        zeros ? "" : " NONZERO past the cache");
  }
}

void run_decode_sweep(Totals& totals, const std::vector<int64_t>& dims) {
  const std::vector<int64_t> keys = {1, 2, 7, 63, 64, 65, 128, 577, 1000, 4096};
  int layout = 0;
  for (auto dtype : {at::kHalf, at::kBFloat16}) {
    for (int64_t d : dims) {
      for (int64_t sq = 1; sq <= 4; ++sq) {
        for (int64_t sk : keys) {
          run_decode_case(totals, dtype, d, sq, sk, 2, 3, layout++ % 3, false, false, sk % 2 == 1, true);
          run_decode_case(totals, dtype, d, sq, sk, 3, 2, layout++ % 3, true, sq == 1, false, true);
        }
        // The append, the position at the start, inside and at the end of the cache.
        for (int64_t cache_len : {1, 64, 577, 1024}) {
          std::vector<int64_t> positions = {0, cache_len - 1};
          if (cache_len > 2) positions.push_back(1 + at::randint(cache_len - 2, {1}).item<int64_t>());
          if (cache_len == 1) positions = {0};
          for (int64_t position : positions) {
            run_append_case(totals, dtype, d, sq, cache_len, position, 2, 3, false, false, true);
          }
        }
      }
      // Through the table (index_copy_, then split-KV), and more query rows than the kernel takes.
      run_append_case(totals, dtype, d, 1, 577, 200, 2, 3, true, false, true);
      run_append_case(totals, dtype, d, 5, 64, 63, 2, 3, false, false, true);
    }
  }
  // B x H grids of the Florence-2 decoder and beyond: batch 1 (12 blocks) up to 96 x 16.
  const std::vector<std::pair<int64_t, int64_t>> grids = {{1, 12}, {4, 12}, {24, 12}, {96, 16}};
  for (auto [b, h] : grids) {
    for (int64_t sq : {1, 3}) {
      for (int64_t sk : {577, 4096}) {
        run_decode_case(totals, at::kHalf, 64, sq, sk, b, h, 2, false, false, true, true);
        run_decode_case(totals, at::kBFloat16, 64, sq, sk, b, h, 1, true, false, false, true);
      }
      run_decode_case(totals, at::kHalf, 128, sq, 1000, b, h, 0, true, false, false, true);
      run_append_case(totals, at::kHalf, 64, sq, 1024, 511, b, h, false, false, true);
    }
  }
  run_append_case(totals, at::kHalf, 64, 1, 64, 17, 1, 12, false, true, true);  // position of shape []
  // Past the cache: the kernel writes nothing and gives zeros (index_copy_ on the table path would
  // fail a device assertion instead, so not when --config forces the table).
  if (vlm::flash::flash_config_override() < 0)
    run_append_case(totals, at::kHalf, 64, 1, 64, 64, 2, 3, false, false, true);
}

// Microseconds per call of op on the device: 20 calls captured in a CUDA graph and replayed, as the
// decoder's steps run (no launch gaps or host overhead).
double graph_time_us(const std::function<void()>& op) {
  const c10::cuda::CUDAStreamGuard stream_guard(c10::cuda::getStreamFromPool());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
  op();  // warm-up on the capture stream, outside the graph
  cudaStreamSynchronize(stream);
  constexpr int kCalls = 20;
  constexpr int kReplays = 50;
  at::cuda::CUDAGraph graph;
  graph.capture_begin();
  for (int i = 0; i < kCalls; ++i) op();
  graph.capture_end();
  for (int i = 0; i < 3; ++i) graph.replay();
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, stream);
  for (int i = 0; i < kReplays; ++i) graph.replay();
  cudaEventRecord(stop, stream);
  cudaEventSynchronize(stop);
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return 1000.0 * ms / (kCalls * kReplays);
}

// The decode kernel against the split-KV config + combine it replaces, batch 1, 12 heads, one query
// row, head dim 64, fp16: cross-attention shapes (577 keys, kv_ready) and the step's self-attention
// at 128 keys, without and with the cache append.
void time_decode() {
  auto opts = at::TensorOptions().dtype(at::kHalf).device(at::kCUDA);
  const int table = table_decode_config(64);
  std::printf("decode timing, B1 H12 Sq1 d64 fp16, us per call replayed in a CUDA graph (%s):\n",
              at::cuda::getCurrentDeviceProperties()->name);
  for (int64_t sk : {128, 577}) {
    const at::Tensor q = at::randn({1, 12, 1, 64}, opts);
    const at::Tensor k = at::randn({1, 12, sk, 64}, opts);
    const at::Tensor v = at::randn({1, 12, sk, 64}, opts);
    vlm::flash::FlashForwardOptions options;
    options.kv_ready = true;
    const auto call = [&] { vlm::flash::flash_attention_forward(q, k, v, 0.125, options); };
    const double kernel_us = graph_time_us(call);
    double table_us = 0.0;
    {
      const OverrideScope scope(table);
      table_us = graph_time_us(call);
    }
    std::printf("  %4ld keys: decode kernel %.2f us, split-KV %s + combine %.2f us\n", static_cast<long>(sk), kernel_us,
                vlm::flash::flash_config_name(table), table_us);
  }
  // Self-attention at position 127 of a 1024-row cache: the append fused in, against index_copy_ of
  // the key and the value, the key lengths, then split-KV + combine.
  const at::Tensor caches = at::randn({2, 1, 12, 1024, 64}, opts);
  const at::Tensor projection = at::randn({1, 1, 3 * 768}, opts);
  auto head_view = [&](int64_t part) {
    return projection.narrow(-1, part * 768, 768).view({1, 1, 12, 64}).transpose(1, 2);
  };
  vlm::flash::FlashForwardOptions options;
  options.new_k = head_view(1);
  options.new_v = head_view(2);
  options.position = at::full({1}, 127, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
  const at::Tensor q = head_view(0);
  const auto call = [&] { vlm::flash::flash_attention_forward(q, caches[0], caches[1], 0.125, options); };
  const double kernel_us = graph_time_us(call);
  double table_us = 0.0;
  {
    const OverrideScope scope(table);
    table_us = graph_time_us(call);
  }
  std::printf("  append at 127 of 1024: decode kernel %.2f us, index_copy_ x2 + lengths + split-KV + combine %.2f us\n",
              kernel_us, table_us);
}

}  // namespace

int main(int argc, char** argv) {
  if (c10::cuda::device_count() == 0) {
    std::printf("skipped: no CUDA device visible (this check needs a GPU)\n");
    return 77;
  }
  const bool small = argc > 1 && std::strcmp(argv[1], "--small") == 0;
  std::vector<int64_t> dims = {32, 64, 128};
  if (argc > 2 && std::strcmp(argv[1], "--config") == 0) {
    const int config = std::atoi(argv[2]);
    if (!vlm::flash::flash_config_built(config)) {
      std::printf("config %d is not built\n", config);
      return 2;
    }
    vlm::flash::set_flash_config_override(config);
    dims = {vlm::flash::kFlashConfigs[config].head_dim};
    std::printf("forcing config %d (%s)\n", config, vlm::flash::flash_config_name(config));
  }
  at::manual_seed(1234);
  Totals totals;
  const std::vector<at::ScalarType> dtypes = {at::kHalf, at::kBFloat16};
  const std::vector<Mask> masks = {Mask::kNone, Mask::kCausal, Mask::kLengths, Mask::kCausalLengths};
  try {
    if (small) {
      const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 7}, {7, 77}, {64, 64}, {77, 130}, {130, 77}};
      int layout = 0;
      for (int64_t d : dims) {
        for (Mask m : masks) {
          for (auto [sq, sk] : shapes) run_case(totals, at::kHalf, d, m, sq, sk, layout++ % 3, false);
        }
      }
      run_case(totals, at::kBFloat16, 64, Mask::kCausalLengths, 33, 200, 1, false);
      run_zero_length_case(totals);
      for (int64_t d : dims) {
        for (int64_t sq = 1; sq <= 4; ++sq) {
          run_decode_case(totals, at::kHalf, d, sq, 65, 2, 3, static_cast<int>(sq) % 3, true, false, sq == 2, false);
          run_append_case(totals, at::kBFloat16, d, sq, 70, 69, 2, 3, false, false, false);
        }
      }
    } else {
      const std::vector<int64_t> lengths = {1, 7, 64, 577, 1000, 4097};
      int layout = 0;
      for (auto dtype : dtypes) {
        for (int64_t d : dims) {
          for (Mask m : masks) {
            for (int64_t sq : lengths) {
              for (int64_t sk : lengths) run_case(totals, dtype, d, m, sq, sk, layout++ % 3, true);
            }
          }
        }
      }
      run_case(totals, at::kHalf, 64, Mask::kCausal, 577, 577, 0, true, 0.3);  // explicit scale
      run_zero_length_case(totals);
      run_decode_sweep(totals, dims);
      if (vlm::flash::flash_config_override() < 0) time_decode();
    }
  } catch (const std::exception& e) {
    std::printf("FAIL exception: %s\n", e.what());
    return 2;
  }
  std::printf("flash_attention_check%s: %d cases, %d failures\n", small ? " --small" : "", totals.cases,
              totals.failures);
  return totals.failures == 0 ? 0 : 1;
}
