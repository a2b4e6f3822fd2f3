// Which attention backend runs for which request, and why it falls back; CPU only.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "vlm/error.h"
#include "vlm/ops/attention.h"

namespace vlm {
namespace {

AttentionRequest gpu_request(c10::ScalarType dtype = c10::ScalarType::Half, int64_t head_dim = 64) {
  AttentionRequest request;
  request.on_cuda = true;
  request.sm_major = 9;
  request.sm_minor = 0;
  request.dtype = dtype;
  request.head_dim = head_dim;
  request.scale = 0.125;
  return request;
}

TEST(AttentionDispatch, AutoTakesFlashWhereItCanRun) {
  for (auto dtype : {c10::ScalarType::Half, c10::ScalarType::BFloat16}) {
    for (int64_t d : {32, 64, 128}) {
      AttentionChoice choice = choose_attention_backend(gpu_request(dtype, d), AttentionBackend::kAuto, true);
      EXPECT_EQ(choice.backend, AttentionBackend::kFlash) << c10::toString(dtype) << " d" << d;
      EXPECT_EQ(choice.fallback_reason, "");
    }
  }
  AttentionRequest ampere = gpu_request();
  ampere.sm_major = 8;
  ampere.sm_minor = 6;
  EXPECT_EQ(choose_attention_backend(ampere, AttentionBackend::kAuto, true).backend, AttentionBackend::kFlash);
}

TEST(AttentionDispatch, AutoFallsBackToEagerWithReason) {
  struct Case {
    AttentionRequest request;
    bool flash_built;
    const char* reason;
  };
  AttentionRequest cpu = gpu_request();
  cpu.on_cuda = false;
  AttentionRequest turing = gpu_request();
  turing.sm_major = 7;
  turing.sm_minor = 5;
  AttentionRequest no_image = gpu_request();
  no_image.kernel_image = false;
  const Case cases[] = {
      {gpu_request(), false, "this build has no flash-attention kernel (built without CUDA)"},
      {cpu, true, "tensors are not on a CUDA device"},
      {turing, true, "GPU sm_75 is older than sm_80"},
      {no_image, true, "the flash kernels have no code this GPU (sm_90) can load"},
      {gpu_request(c10::ScalarType::Float), true, "dtype Float is not float16 or bfloat16"},
  };
  for (const Case& c : cases) {
    AttentionChoice choice = choose_attention_backend(c.request, AttentionBackend::kAuto, c.flash_built);
    EXPECT_EQ(choice.backend, AttentionBackend::kEager) << c.reason;
    EXPECT_EQ(choice.fallback_reason, c.reason);
    // Asked for explicitly, flash refuses with the same reason instead of silently running eager.
    try {
      choose_attention_backend(c.request, AttentionBackend::kFlash, c.flash_built);
      ADD_FAILURE() << "flash accepted: " << c.reason;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
      EXPECT_NE(std::string(e.what()).find(c.reason), std::string::npos) << e.what();
    }
  }
}

// A shape the kernel does not cover runs eager even when flash is asked for: Florence-2's DaViT
// channel attention has head dim = tokens (e.g. 36864), and the rest of the model must still use flash.
TEST(AttentionDispatch, UncoveredShapesRunEagerEvenWhenFlashIsAsked) {
  AttentionRequest zero_scale = gpu_request();
  zero_scale.scale = 0.0;
  const std::pair<AttentionRequest, const char*> cases[] = {
      {gpu_request(c10::ScalarType::Half, 96), "head dim 96 is not 32, 64 or 128"},
      {gpu_request(c10::ScalarType::Half, 16), "head dim 16 is not 32, 64 or 128"},
      {gpu_request(c10::ScalarType::BFloat16, 36864), "head dim 36864 is not 32, 64 or 128"},
      {zero_scale, "softmax scale 0.000000 is not positive"},
  };
  for (const auto& [request, reason] : cases) {
    for (auto requested : {AttentionBackend::kAuto, AttentionBackend::kFlash}) {
      AttentionChoice choice = choose_attention_backend(request, requested, true);
      EXPECT_EQ(choice.backend, AttentionBackend::kEager) << reason;
      EXPECT_EQ(choice.fallback_reason, reason);
    }
  }
  // A setting flash cannot run still refuses first, even for an uncovered shape.
  AttentionRequest fp32_odd = gpu_request(c10::ScalarType::Float, 96);
  EXPECT_THROW(choose_attention_backend(fp32_odd, AttentionBackend::kFlash, true), Error);
}

TEST(AttentionDispatch, EagerAndSdpaAreTakenAsAsked) {
  AttentionRequest cpu;  // fp32 on the CPU: flash could not run, but nobody asked for it
  for (auto backend : {AttentionBackend::kEager, AttentionBackend::kSdpa}) {
    AttentionChoice choice = choose_attention_backend(cpu, backend, false);
    EXPECT_EQ(choice.backend, backend);
    EXPECT_EQ(choice.fallback_reason, "");
    EXPECT_EQ(choose_attention_backend(gpu_request(), backend, true).backend, backend);
  }
}

TEST(AttentionDispatch, TensorOverloadDescribesTheCall) {
  at::Tensor q = at::randn({1, 2, 5, 64});
  AttentionOptions options;
  options.backend = AttentionBackend::kAuto;
  set_default_attention_backend(AttentionBackend::kAuto);
  AttentionChoice choice = choose_attention_backend(q, q, options);
  EXPECT_EQ(choice.backend, AttentionBackend::kEager);
#if VLM_WITH_CUDA
  EXPECT_EQ(choice.fallback_reason, "tensors are not on a CUDA device");
#else
  EXPECT_EQ(choice.fallback_reason, "this build has no flash-attention kernel (built without CUDA)");
#endif
  // The process default applies only when the call says kAuto.
  set_default_attention_backend(AttentionBackend::kSdpa);
  EXPECT_EQ(choose_attention_backend(q, q, options).backend, AttentionBackend::kSdpa);
  options.backend = AttentionBackend::kEager;
  EXPECT_EQ(choose_attention_backend(q, q, options).backend, AttentionBackend::kEager);
  set_default_attention_backend(AttentionBackend::kAuto);
}

TEST(AttentionDispatch, AutoOnCpuComputesEagerAttention) {
  at::manual_seed(7);
  at::Tensor q = at::randn({2, 3, 7, 32});
  at::Tensor k = at::randn({2, 3, 11, 32});
  at::Tensor v = at::randn({2, 3, 11, 32});
  AttentionOptions options;
  options.causal = true;
  options.key_lengths = at::tensor({11, 9}, at::kLong);
  at::Tensor out = attention(q, k, v, options);
  // Independent reference: loop over rows, softmax over the visible keys only.
  at::Tensor ref = at::zeros_like(out);
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t len = b == 0 ? 11 : 9;
    for (int64_t i = 0; i < 7; ++i) {
      const int64_t visible = std::min<int64_t>(len, i + 1 + (11 - 7));
      at::Tensor s =
          at::matmul(q[b].select(1, i).unsqueeze(1), k[b].narrow(1, 0, visible).transpose(1, 2)) / std::sqrt(32.0);
      ref[b].select(1, i).copy_(at::matmul(at::softmax(s, -1), v[b].narrow(1, 0, visible)).squeeze(1));
    }
  }
  EXPECT_LT((out - ref).abs().max().item<double>(), 1e-5);
  options.backend = AttentionBackend::kFlash;
  EXPECT_THROW(attention(q, k, v, options), Error);
}

TEST(AttentionDispatch, FlashListedOnlyInCudaBuilds) {
  auto backends = available_attention_backends();
  const bool has_flash = std::find(backends.begin(), backends.end(), "flash") != backends.end();
#if VLM_WITH_CUDA
  EXPECT_TRUE(has_flash);
#else
  EXPECT_FALSE(has_flash);
#endif
  EXPECT_NE(std::find(backends.begin(), backends.end(), "eager"), backends.end());
  EXPECT_NE(std::find(backends.begin(), backends.end(), "sdpa"), backends.end());
}

}  // namespace
}  // namespace vlm
