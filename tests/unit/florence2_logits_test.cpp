// Florence-2 logits processing rules that the parity fixtures' random checkpoints never reach.
#include <limits>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "generation.h"
#include "logits_processor.h"

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

// The decode step keeps prefixes in a buffer as wide as the whole generation and the current length
// in a tensor: no_repeat_ngram_size must read only ids[:, :cur_len], whatever the buffer holds after.
TEST(Florence2Logits, NoRepeatNgramReadsOnlyThePrefix) {
  GenerationConfig config;
  config.no_repeat_ngram_size = 2;
  // Prefix 4 5 6 4 (cur_len 4): the bigram "4 5" was seen, so 5 is banned after the last 4. The
  // buffer continues 6 1 4 7: "6 1" and "4 7" lie beyond cur_len and must ban nothing.
  const at::Tensor ids = at::tensor(std::vector<std::int64_t>{4, 5, 6, 4, 6, 1, 4, 7}, at::kLong).unsqueeze(0);
  const vlm::florence2::LogitsProcessor processor(config, 8, at::TensorOptions());
  for (const std::int64_t cur_len : {4, 2}) {
    at::Tensor scores = at::zeros({1, 8}, at::kFloat);
    processor.apply(ids, at::full({}, cur_len, at::kLong), {at::full({}, 100, at::kLong), at::full({}, 2, at::kLong)},
                    scores);
    const at::Tensor banned = scores[0].isinf();
    if (cur_len == 4) {
      EXPECT_TRUE(banned[5].item<bool>());
      EXPECT_EQ(banned.sum().item<std::int64_t>(), 1);
    } else {
      // Prefix 4 5: no earlier bigram starts with 5.
      EXPECT_EQ(banned.sum().item<std::int64_t>(), 0);
    }
  }
}
