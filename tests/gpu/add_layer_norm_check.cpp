// vlm::ops::add_layer_norm's CUDA kernel against the two ops it replaces (at::layer_norm(x + y) on the
// same device), for Florence-2's widths (768 base, 1024 large), odd widths, the widest row it takes
// (4096), one row to many, in float32, float16 and bfloat16; and both timed on a decode step's shape.
// Tolerance: float32 2e-5 absolute (the two reduce in different orders; values are O(1)); float16 and
// bfloat16 one unit in the last place of the output's magnitude (2^-10 and 2^-7 relative, at most
// 4 levels of O(4) values: 1e-2 and 6.25e-2), with the share of bit-identical outputs printed.
// Also the decode step's embedding (vlm::ops::embedding_layer_norm) against its five ops.
// Exits 77 (ctest: skipped) where no CUDA device is visible.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>

#include <cstdio>
#include <vector>

#include "gpu_check.h"
#include "vlm/ops/add_layer_norm.h"

namespace {

using vlm::gpu_check::time_us;

struct Case {
  int64_t rows;
  int64_t width;
};

}  // namespace

int main() {
  if (vlm::gpu_check::no_cuda_device()) return vlm::gpu_check::kSkipped;
  at::manual_seed(0);
  const at::Device cuda(at::kCUDA, 0);
  int failures = 0;
  const std::vector<Case> cases = {{1, 768}, {3, 768}, {8, 1024}, {577, 768}, {5, 1000}, {2, 33}, {4, 4096}, {1, 1}};
  const std::vector<std::pair<at::ScalarType, double>> dtypes = {
      {at::kFloat, 2e-5}, {at::kHalf, 1e-2}, {at::kBFloat16, 6.25e-2}};
  for (const auto& [dtype, tolerance] : dtypes) {
    for (const Case& c : cases) {
      const auto options = at::TensorOptions().dtype(dtype).device(cuda);
      // A residual stream of larger values plus a sublayer output, as in BART; a non-trivial affine.
      const at::Tensor x = (at::randn({c.rows, c.width}, options.dtype(at::kFloat)) * 4).to(dtype);
      const at::Tensor y = at::randn({c.rows, c.width}, options.dtype(at::kFloat)).to(dtype);
      const at::Tensor weight = (at::rand({c.width}, options.dtype(at::kFloat)) + 0.5).to(dtype);
      const at::Tensor bias = (at::randn({c.width}, options.dtype(at::kFloat)) * 0.1).to(dtype);
      const at::Tensor want = at::layer_norm(x + y, {c.width}, weight, bias, 1e-5);
      const at::Tensor got = vlm::ops::add_layer_norm(x, y, weight, bias, 1e-5);
      const double worst = (got.to(at::kFloat) - want.to(at::kFloat)).abs().max().item<double>();
      const double identical = got.eq(want).to(at::kFloat).mean().item<double>();
      const bool ok = got.sizes() == want.sizes() && got.scalar_type() == dtype && worst <= tolerance;
      failures += ok ? 0 : 1;
      std::printf("%s %-9s [%4ld, %4ld]: max abs difference %.3g (tolerance %.3g), %.1f%% bit-identical\n",
                  ok ? "PASS" : "FAIL", c10::toString(dtype), static_cast<long>(c.rows), static_cast<long>(c.width),
                  worst, tolerance, 100.0 * identical);
    }
  }
  // vlm::ops::embedding_layer_norm (a decode step's input: each sequence's token at a device-held
  // step, its embedding optionally scaled, plus the learned position at that step, then the
  // LayerNorm) against the six ops it replaces, on the same device, with the same tolerances. The
  // position is changed after the first call to show it is read on the device, not baked in; the
  // sequences are also passed as a column-strided view.
  for (const auto& [dtype, tolerance] : dtypes) {
    for (const double scale : {1.0, 27.712812921102035}) {
      for (const int64_t rows : {int64_t{1}, int64_t{3}, int64_t{96}}) {
        const auto options = at::TensorOptions().dtype(dtype).device(cuda);
        const int64_t width = rows == 3 ? 1024 : 768;
        const at::Tensor table = at::randn({1000, width}, options.dtype(at::kFloat)).to(dtype);
        const at::Tensor positions = at::randn({130, width}, options.dtype(at::kFloat)).to(dtype);
        // Every row's token differs from step to step, so reading the wrong column shows.
        const at::Tensor sequences = at::randint(0, 1000, {rows, 128}, options.dtype(at::kLong));
        const at::Tensor ids = rows == 3 ? sequences.t().contiguous().t() : sequences;
        const at::Tensor weight = (at::rand({width}, options.dtype(at::kFloat)) + 0.5).to(dtype);
        const at::Tensor bias = (at::randn({width}, options.dtype(at::kFloat)) * 0.1).to(dtype);
        at::Tensor position = at::full({1}, 5, options.dtype(at::kLong));
        for (const int64_t step : {int64_t{5}, int64_t{127}}) {
          position.fill_(step);
          at::Tensor h = at::embedding(table, ids.index_select(1, position).squeeze(1));
          if (scale != 1.0) h = h * scale;
          const at::Tensor want =
              at::layer_norm(h + positions.index_select(0, position + 2), {width}, weight, bias, 1e-5);
          const at::Tensor got =
              vlm::ops::embedding_layer_norm(table, ids, scale, positions, position, 2, weight, bias, 1e-5);
          const double worst = (got.to(at::kFloat) - want.to(at::kFloat)).abs().max().item<double>();
          const bool ok = got.sizes() == want.sizes() && got.scalar_type() == dtype && worst <= tolerance;
          failures += ok ? 0 : 1;
          std::printf(
              "%s embedding %-9s rows %3ld width %4ld scale %.3g position %3ld: max abs difference %.3g "
              "(tolerance %.3g)\n",
              ok ? "PASS" : "FAIL", c10::toString(dtype), static_cast<long>(rows), static_cast<long>(width), scale,
              static_cast<long>(step), worst, tolerance);
        }
      }
    }
  }
  // The decode step's shape at batch 1 (one row of 768, float16): the fused kernel against add + LayerNorm.
  const auto half = at::TensorOptions().dtype(at::kHalf).device(cuda);
  const at::Tensor x = at::randn({1, 1, 768}, half), y = at::randn({1, 1, 768}, half);
  const at::Tensor weight = at::ones({768}, half), bias = at::zeros({768}, half);
  const double fused = time_us([&] { vlm::ops::add_layer_norm(x, y, weight, bias, 1e-5); });
  const double separate = time_us([&] { at::layer_norm(x + y, {768}, weight, bias, 1e-5); });
  std::printf("time: one row of 768 fp16, back to back: fused %.2f us, add + layer_norm %.2f us\n", fused, separate);
  const at::Tensor table = at::randn({51289, 768}, half), positions = at::randn({1026, 768}, half);
  const at::Tensor ids = at::zeros({1, 1024}, half.dtype(at::kLong)),
                   position = at::full({1}, 64, half.dtype(at::kLong));
  const double embedded =
      time_us([&] { vlm::ops::embedding_layer_norm(table, ids, 1.0, positions, position, 2, weight, bias, 1e-5); });
  const double embedded_ops = time_us([&] {
    at::layer_norm(
        at::embedding(table, ids.index_select(1, position).squeeze(1)) + positions.index_select(0, position + 2), {768},
        weight, bias, 1e-5);
  });
  std::printf("time: decode-step embedding, one row of 768 fp16: fused %.2f us, the ops %.2f us\n", embedded,
              embedded_ops);
  return failures == 0 ? 0 : 1;
}
