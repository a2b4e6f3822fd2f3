// Benchmark: our flash kernel beside libtorch's FlashAttention-2 (sdpa flash) and cuDNN backends,
// on the same inputs, at the shapes of issue 5. Median of CUDA-event timings; inputs rotate over
// several buffers so small shapes are not timed out of L2.
//
//   flash_attention_bench              the table
//   flash_attention_bench --tune       also every built config (and split count for decode)
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "flash_attention/flash_api.h"
#include "flash_attention/flash_config.h"
#include "flash_attention/flash_params.h"

namespace {

struct Shape {
  const char* name;
  int64_t b, h, sq, sk, d;
  bool causal;
};

double attention_flops(const Shape& s) {
  // Visible (query, key) pairs times 4 * D (two matmuls); bottom-right causal counts exactly.
  double pairs = 0.0;
  if (s.causal) {
    for (int64_t i = 0; i < s.sq; ++i) pairs += static_cast<double>(std::clamp<int64_t>(i + 1 + s.sk - s.sq, 0, s.sk));
  } else {
    pairs = static_cast<double>(s.sq) * static_cast<double>(s.sk);
  }
  return 4.0 * static_cast<double>(s.b * s.h) * pairs * static_cast<double>(s.d);
}

// Median milliseconds per call of fn(i) where i picks the input set.
double time_ms(const std::function<void(int)>& fn, int sets) {
  for (int i = 0; i < 5; ++i) fn(i % sets);
  auto stream = at::cuda::getCurrentCUDAStream().stream();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  // Enough calls per sample for ~2 ms of work, 15 samples.
  cudaEventRecord(start, stream);
  fn(0);
  cudaEventRecord(stop, stream);
  cudaEventSynchronize(stop);
  float one = 0.0f;
  cudaEventElapsedTime(&one, start, stop);
  const int reps = std::clamp(static_cast<int>(2.0f / std::max(one, 1e-3f)), 1, 200);
  std::vector<double> samples;
  for (int s = 0; s < 15; ++s) {
    cudaEventRecord(start, stream);
    for (int r = 0; r < reps; ++r) fn((s * reps + r) % sets);
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    samples.push_back(ms / reps);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const bool tune = argc > 1 && std::strcmp(argv[1], "--tune") == 0;
  const std::vector<Shape> shapes = {
      {"seed B16 H16 S4096 D128", 16, 16, 4096, 4096, 128, false},
      {"seed B16 H16 S4096 D128 causal", 16, 16, 4096, 4096, 128, true},
      {"F2 lang B8 H12 S577 D64", 8, 12, 577, 577, 64, false},
      {"F2 lang B32 H12 S577 D64", 32, 12, 577, 577, 64, false},
      {"DaViT 4096win H3 S144 D32", 4096, 3, 144, 144, 32, false},
      {"decode B24 H12 q1 k600 D64", 24, 12, 1, 600, 64, false},
  };
  // "ours" is what models get: the autotuned config per shape bucket (printed when chosen).
  vlm::flash::flash_autotuner().set_observer([](const vlm::flash::TuneDecision& d) {
    std::printf("  autotune %s -> %s (", vlm::flash::describe(d.key).c_str(), vlm::flash::flash_config_name(d.config));
    for (const auto& t : d.timings) std::printf(" %s %.4f ms", vlm::flash::flash_config_name(t.config), t.ms);
    std::printf(" )\n");
  });
  auto opts = at::TensorOptions().dtype(at::kHalf).device(at::kCUDA);
  std::vector<std::string> rows;
  std::printf("%-32s %9s %8s %8s %8s %7s %7s\n", "shape (fp16)", "ours ms", "ours TF", "FA2 TF", "cuDNN TF", "/FA2",
              "/cuDNN");
  for (const Shape& s : shapes) {
    const int64_t bytes_per_set = 2 * (s.b * s.h * (s.sq + 2 * s.sk) * s.d);
    const int sets = static_cast<int>(std::clamp<int64_t>((256LL << 20) / std::max<int64_t>(bytes_per_set, 1), 1, 8));
    std::vector<at::Tensor> q, k, v;
    for (int i = 0; i < sets; ++i) {
      q.push_back(at::randn({s.b, s.h, s.sq, s.d}, opts));
      k.push_back(at::randn({s.b, s.h, s.sk, s.d}, opts));
      v.push_back(at::randn({s.b, s.h, s.sk, s.d}, opts));
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.d));
    const double flops = attention_flops(s);
    auto ours = [&](int i) { vlm::flash::flash_attention_forward(q[i], k[i], v[i], scale, s.causal, at::Tensor()); };
    const double ours_ms = time_ms(ours, sets);
    double fa2_ms = -1.0, cudnn_ms = -1.0;
    try {
      fa2_ms = time_ms(
          [&](int i) { at::_scaled_dot_product_flash_attention(q[i], k[i], v[i], 0.0, s.causal, false, scale); }, sets);
    } catch (const std::exception& e) {
      std::printf("  sdpa flash unavailable for %s: %.120s\n", s.name, e.what());
    }
    try {
      cudnn_ms = time_ms(
          [&](int i) {
            at::_scaled_dot_product_cudnn_attention(q[i], k[i], v[i], std::nullopt, false, 0.0, s.causal, false, scale);
          },
          sets);
    } catch (const std::exception& e) {
      std::printf("  cuDNN unavailable for %s: %.120s\n", s.name, e.what());
    }
    auto tf = [&](double ms) { return ms > 0 ? flops / (ms * 1e-3) / 1e12 : 0.0; };
    char line[256];
    std::snprintf(line, sizeof(line), "%-32s %9.4f %8.1f %8.1f %8.1f %7.2f %7.2f", s.name, ours_ms, tf(ours_ms),
                  tf(fa2_ms), tf(cudnn_ms), fa2_ms > 0 ? fa2_ms / ours_ms : 0.0,
                  cudnn_ms > 0 ? cudnn_ms / ours_ms : 0.0);
    std::printf("%s\n", line);
    rows.emplace_back(line);
    if (tune) {
      for (int c = 0; c < vlm::flash::flash_config_count(); ++c) {
        if (!vlm::flash::flash_config_built(c) || vlm::flash::kFlashConfigs[c].head_dim != s.d) continue;
        std::vector<int> splits = {0};
        if (vlm::flash::kFlashConfigs[c].role == vlm::flash::ConfigRole::kDecode) splits = {1, 2, 4, 8, 16};
        for (int sp : splits) {
          vlm::flash::set_flash_config_override(c);
          vlm::flash::set_flash_splits_override(sp);
          const double ms = time_ms(ours, sets);
          std::printf("    tune %-26s splits %2d: %9.4f ms %8.1f TF/s\n", vlm::flash::flash_config_name(c), sp, ms,
                      tf(ms));
        }
      }
      vlm::flash::set_flash_config_override(-1);
      vlm::flash::set_flash_splits_override(0);
    }
  }
  std::printf("\n%-32s %9s %8s %8s %8s %7s %7s\n", "shape (fp16)", "ours ms", "ours TF", "FA2 TF", "cuDNN TF", "/FA2",
              "/cuDNN");
  for (const auto& r : rows) std::printf("%s\n", r.c_str());
  return 0;
}
