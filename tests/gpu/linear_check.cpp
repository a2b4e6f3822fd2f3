// vlm::ops::linear's few-rows CUDA kernel against a float32 reference on the same device (at::linear of
// the same values in float32, rounded to the dtype as the linear's output is, then at::gelu rounded
// again), beside cuBLAS's at::linear in the dtype against the same reference: Florence-2's decoder
// projections (base 768 and large 1024 wide, QKV, feed-forward in and out, the 51,289-token LM head
// without bias), 1 to 8 rows, odd feature counts, no bias, float16 and bfloat16; then the kernel and
// the ATen ops it replaces timed on each projection at 1 and 3 rows. Tolerance: 2 units in the last
// place of max(|reference|, 1) (float16 2^-9, bfloat16 2^-6): accumulating in another order moves the
// linear's rounding by at most one unit, and the GELU after it by about one more.
// Exits 77 (ctest: skipped) where no CUDA device is visible.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "gpu_check.h"
#include "vlm/ops/linear.h"

namespace {

using vlm::gpu_check::time_us;

using vlm::ops::Activation;

struct Case {
  const char* name;
  int64_t in;
  int64_t out;
  bool bias;
  Activation activation;
};

at::Tensor aten(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, Activation activation) {
  const at::Tensor y = at::linear(x, w, b);
  return activation == Activation::kGeluExact ? at::gelu(y) : y;
}

// The same in float32 from the same values, rounded where the dtype's ops round.
at::Tensor reference(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, Activation activation) {
  const auto dtype = x.scalar_type();
  const at::Tensor y = at::linear(x.to(at::kFloat), w.to(at::kFloat), b.defined() ? b.to(at::kFloat) : b).to(dtype);
  return (activation == Activation::kGeluExact ? at::gelu(y.to(at::kFloat)).to(dtype) : y).to(at::kFloat);
}

}  // namespace

int main() {
  if (vlm::gpu_check::no_cuda_device()) return vlm::gpu_check::kSkipped;
  at::manual_seed(0);
  const at::Device cuda(at::kCUDA, 0);
  int failures = 0;
  const std::vector<Case> cases = {{"base QKV", 768, 2304, true, Activation::kNone},
                                   {"base out", 768, 768, true, Activation::kNone},
                                   {"base fc1+GELU", 768, 3072, true, Activation::kGeluExact},
                                   {"base fc2", 3072, 768, true, Activation::kNone},
                                   {"base LM head", 768, 51289, false, Activation::kNone},
                                   {"large fc1+GELU", 1024, 4096, true, Activation::kGeluExact},
                                   {"large fc2", 4096, 1024, true, Activation::kNone},
                                   {"odd features", 72, 13, true, Activation::kGeluExact},
                                   {"one feature, no bias", 8, 1, false, Activation::kNone}};
  // One unit in the last place at magnitude 1.
  const std::vector<std::pair<at::ScalarType, double>> dtypes = {{at::kHalf, 1.0 / 1024}, {at::kBFloat16, 1.0 / 128}};
  for (const auto& [dtype, relative] : dtypes) {
    for (const Case& c : cases) {
      for (const int64_t rows : {1, 2, 3, 5, 8}) {
        const auto options = at::TensorOptions().dtype(at::kFloat).device(cuda);
        // Weights and inputs at the scale of a trained layer's: outputs O(1) to O(4).
        const at::Tensor x = at::randn({rows, c.in}, options).to(dtype);
        const at::Tensor w = (at::randn({c.out, c.in}, options) / std::sqrt(static_cast<double>(c.in)) * 2).to(dtype);
        const at::Tensor b = c.bias ? (at::randn({c.out}, options) * 0.5).to(dtype) : at::Tensor();
        const at::Tensor want = reference(x, w, b, c.activation);
        const at::Tensor got = vlm::ops::linear(x, w, b, c.activation);
        const at::Tensor error = (got.to(at::kFloat) - want).abs();
        const double cublas_error = (aten(x, w, b, c.activation).to(at::kFloat) - want).abs().max().item<double>();
        const at::Tensor bound = want.abs().clamp_min(1.0) * (2 * relative);
        const bool ok = got.sizes() == want.sizes() && got.scalar_type() == dtype && error.le(bound).all().item<bool>();
        const double identical = got.to(at::kFloat).eq(want).to(at::kFloat).mean().item<double>();
        failures += ok ? 0 : 1;
        std::printf("%s %-8s %-22s rows %lld: max abs error %.3g (cuBLAS %.3g), %.1f%% equal to the reference\n",
                    ok ? "PASS" : "FAIL", dtype == at::kHalf ? "float16" : "bfloat16", c.name,
                    static_cast<long long>(rows), error.max().item<double>(), cublas_error, 100 * identical);
      }
    }
  }
  // A leading batch dimension is flattened; more rows than the kernel takes go to at::linear.
  {
    const auto options = at::TensorOptions().dtype(at::kHalf).device(cuda);
    const at::Tensor x = at::randn({2, 1, 768}, options);
    const at::Tensor w = at::randn({64, 768}, options) / 16;
    const at::Tensor b = at::randn({64}, options);
    const at::Tensor many = at::randn({9, 768}, options);
    const bool ok = vlm::ops::linear(x, w, b).sizes() == at::IntArrayRef({2, 1, 64}) &&
                    at::equal(vlm::ops::linear(many, w, b), at::linear(many, w, b));
    failures += ok ? 0 : 1;
    std::printf("%s shapes: [2, 1, 768] gives [2, 1, 64]; 9 rows are at::linear's\n", ok ? "PASS" : "FAIL");
  }
  std::printf("%-16s %5s %12s %12s\n", "projection (fp16)", "rows", "kernel us", "ATen us");
  for (const Case& c : cases) {
    if (c.in < 768) continue;
    for (const int64_t rows : {1, 3}) {
      const auto options = at::TensorOptions().dtype(at::kHalf).device(cuda);
      const at::Tensor x = at::randn({rows, c.in}, options);
      const at::Tensor w = at::randn({c.out, c.in}, options) / 32;
      const at::Tensor b = c.bias ? at::randn({c.out}, options) : at::Tensor();
      const double kernel = time_us([&] { vlm::ops::linear(x, w, b, c.activation); });
      const double aten_us = time_us([&] { aten(x, w, b, c.activation); });
      std::printf("time: %-16s %5lld %12.2f %12.2f\n", c.name, static_cast<long long>(rows), kernel, aten_us);
    }
  }
  return failures == 0 ? 0 : 1;
}
