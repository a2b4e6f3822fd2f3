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

// The cache append on the eager and sdpa backends (and auto on the CPU): the caches changed at the
// position only, and the output that of attention with key lengths position + 1 after writing the
// row by hand, which is also attention over the first position + 1 keys alone.
TEST(AttentionAppend, WritesTheRowAndAttendsUpToIt) {
  at::manual_seed(11);
  const int64_t b = 2, h = 3, length = 9, d = 16;
  for (auto backend : {AttentionBackend::kEager, AttentionBackend::kSdpa, AttentionBackend::kAuto}) {
    for (int64_t position : {0, 4, 8}) {
      for (int64_t sq : {1, 3}) {
        // Caches as KvCache::self's layer slice; the new key and value strided views of a fused
        // projection, as the decoder's step passes them.
        const at::Tensor caches = at::randn({2, b, h, length, d});
        const at::Tensor projection = at::randn({b, 1, 3 * h * d});
        auto head_view = [&](int64_t part) {
          return projection.narrow(-1, part * h * d, h * d).view({b, 1, h, d}).transpose(1, 2);
        };
        const at::Tensor q = at::randn({b, h, sq, d});
        at::Tensor expected = caches.clone();
        expected[0].narrow(2, position, 1).copy_(head_view(1));
        expected[1].narrow(2, position, 1).copy_(head_view(2));

        AttentionOptions options;
        options.backend = backend;
        options.append = AttentionOptions::CacheAppend{head_view(1), head_view(2), at::tensor({position}, at::kLong)};
        const at::Tensor out = attention(q, caches[0], caches[1], options);
        EXPECT_TRUE(at::equal(caches, expected)) << "position " << position;

        AttentionOptions lengths;
        lengths.backend = backend;
        lengths.key_lengths = at::full({b}, position + 1, at::kLong);
        const at::Tensor with_lengths = attention(q, expected[0], expected[1], lengths);
        EXPECT_EQ((out - with_lengths).abs().max().item<double>(), 0.0) << "position " << position;

        AttentionOptions plain;
        plain.backend = backend;
        const at::Tensor visible =
            attention(q, expected[0].narrow(2, 0, position + 1), expected[1].narrow(2, 0, position + 1), plain);
        EXPECT_LT((out - visible).abs().max().item<double>(), 1e-5) << "position " << position;
      }
    }
  }
}

TEST(AttentionAppend, PositionOfShapeEmptyAndCausalOneRow) {
  at::manual_seed(12);
  const at::Tensor caches = at::randn({2, 1, 2, 5, 8});
  const at::Tensor key = at::randn({1, 2, 1, 8});
  const at::Tensor value = at::randn({1, 2, 1, 8});
  const at::Tensor q = at::randn({1, 2, 1, 8});
  AttentionOptions options;
  options.causal = true;  // one query row, bottom-right: masks nothing
  options.append = AttentionOptions::CacheAppend{key, value, at::scalar_tensor(2, at::kLong)};
  const at::Tensor out = attention(q, caches[0], caches[1], options);
  EXPECT_TRUE(at::equal(caches[0].narrow(2, 2, 1), key));
  EXPECT_TRUE(at::equal(caches[1].narrow(2, 2, 1), value));
  AttentionOptions plain;
  const at::Tensor visible = attention(q, caches[0].narrow(2, 0, 3), caches[1].narrow(2, 0, 3), plain);
  EXPECT_LT((out - visible).abs().max().item<double>(), 1e-6);
}

TEST(AttentionAppend, RejectsWhatItCannotWrite) {
  const at::Tensor k = at::zeros({2, 3, 6, 8});
  const at::Tensor v = at::zeros({2, 3, 6, 8});
  const at::Tensor q = at::randn({2, 3, 1, 8});
  const at::Tensor row = at::randn({2, 3, 1, 8});
  const at::Tensor position = at::tensor({1}, at::kLong);
  struct Case {
    AttentionOptions::CacheAppend append;
    bool key_lengths;
    const char* says;
  };
  const Case cases[] = {
      {{at::randn({2, 3, 2, 8}), row, position}, false, "needs key and value [2, 3, 1, 8]"},
      {{row, at::Tensor(), position}, false, "needs key and value [2, 3, 1, 8]"},
      {{row.to(at::kDouble), row, position}, false, "share k's dtype"},
      {{row, row, at::tensor({1}, at::kInt)}, false, "position must be one int64"},
      {{row, row, at::tensor({1, 2}, at::kLong)}, false, "position must be one int64"},
      {{row, row, position}, true, "not both"},
  };
  for (const Case& c : cases) {
    AttentionOptions options;
    options.append = c.append;
    if (c.key_lengths) options.key_lengths = at::full({2}, 3, at::kLong);
    try {
      attention(q, k, v, options);
      ADD_FAILURE() << "accepted: " << c.says;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(k.abs().max().item<double>(), 0.0);  // nothing written by a refused call
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
