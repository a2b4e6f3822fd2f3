// GPU correctness check for the flash-attention kernels (ctest label gpu; tools/gpu/attention.sh on the
// GPU machine). Exits 77 (ctest: skipped) where no CUDA device is visible.
//
// Every dtype x head dim x mask x (query length, key length) combination, on random inputs in three
// memory layouts, with the output poisoned (NaN) before each run. Reference: fp32 eager attention on
// the same inputs. Pass: no NaN left, and max |ours - ref| <= 2 * max |libtorch same-dtype - ref|
// + 1e-5 (the FlashAttention test rule; libtorch runs scaled_dot_product_attention in fp16/bf16).
//
//   flash_attention_check            full sweep
//   flash_attention_check --small    a few small shapes, for compute-sanitizer
//   flash_attention_check --config N the full sweep of config-table row N's head dim, forced to row N
//                                    (checks tuning candidates before they ship)
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
    }
  } catch (const std::exception& e) {
    std::printf("FAIL exception: %s\n", e.what());
    return 2;
  }
  std::printf("flash_attention_check%s: %d cases, %d failures\n", small ? " --small" : "", totals.cases,
              totals.failures);
  return totals.failures == 0 ? 0 : 1;
}
