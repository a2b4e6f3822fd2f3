// Florence-2 logits processing rules that the parity fixtures' random checkpoints never reach.
#include <limits>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "generation.h"

using vlm::florence2::GenerationConfig;
using vlm::florence2::process_logits;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Scores after processing for one row whose decoder prefix has `cur_len` tokens.
at::Tensor processed(const GenerationConfig& config, int cur_len, int max_length) {
  const at::Tensor ids = at::arange(10, 10 + cur_len, at::kLong).unsqueeze(0);
  at::Tensor scores = at::linspace(-1.0, 1.0, 8, at::kFloat).unsqueeze(0);
  process_logits(ids, scores, config, max_length);
  return scores[0];
}

}  // namespace

// transformers' MinNewTokensLengthLogitsProcessor: every EOS id is -inf while fewer than
// min_new_tokens follow the decoder start token, and untouched from then on.
TEST(Florence2Logits, MinNewTokensBansEveryEosUntilReached) {
  GenerationConfig config;
  config.eos_token_ids = {2, 5};
  config.min_new_tokens = 3;
  for (int cur_len = 1; cur_len <= 3; ++cur_len) {
    const at::Tensor s = processed(config, cur_len, 100);
    EXPECT_EQ(s[2].item<float>(), -kInf) << "cur_len " << cur_len;
    EXPECT_EQ(s[5].item<float>(), -kInf) << "cur_len " << cur_len;
    EXPECT_GT(s[7].item<float>(), 0.9f);
  }
  const at::Tensor after = processed(config, 4, 100);
  EXPECT_TRUE(after.isfinite().all().item<bool>());
}

// min_new_tokens runs before ForcedEOSTokenLogitsProcessor in transformers' list, so the forced EOS
// of the last step wins over the ban (min_new_tokens = max_new_tokens still ends with EOS).
TEST(Florence2Logits, ForcedEosWinsOverMinNewTokensAtTheLastStep) {
  GenerationConfig config;
  config.eos_token_ids = {2};
  config.forced_eos_token_id = 2;
  config.min_new_tokens = 8;
  const at::Tensor s = processed(config, 4, 5);
  EXPECT_EQ(s[2].item<float>(), 0.0f);
  EXPECT_EQ(s.isinf().sum().item<std::int64_t>(), 7);
}
