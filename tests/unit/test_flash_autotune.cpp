// The flash-attention autotuner's policy (kernels/flash_attention/flash_autotune.h), with timings
// supplied by the test: which candidate wins, what is cached and when timing happens again. The GPU
// side (real timings, real configs) runs in tools/gpu/attention.sh.
#include "flash_attention/flash_autotune.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace vlm::flash {
namespace {

TuneKey key_for(int64_t seqlen_q, int64_t seqlen_k, int64_t batch_heads, bool causal = false) {
  return make_tune_key(0, false, 64, causal, false, seqlen_q, seqlen_k, batch_heads);
}

TEST(FlashAutotune, BucketsRoundUpToPowersOfTwo) {
  EXPECT_EQ(tune_bucket(1), 1);
  EXPECT_EQ(tune_bucket(2), 2);
  EXPECT_EQ(tune_bucket(3), 4);
  EXPECT_EQ(tune_bucket(577), 1024);
  EXPECT_EQ(tune_bucket(1024), 1024);
  EXPECT_EQ(tune_bucket(4097), 8192);
}

TEST(FlashAutotune, PicksTheFastestAndTimesEachCandidateOnce) {
  FlashAutotuner tuner;
  std::map<int, int> calls;
  const std::map<int, double> ms = {{2, 0.50}, {11, 0.41}, {7, 0.45}};
  auto time = [&](int config) {
    ++calls[config];
    return ms.at(config);
  };
  EXPECT_EQ(tuner.choose(key_for(577, 577, 96), {2, 11, 7}, time), 11);
  EXPECT_EQ(calls, (std::map<int, int>{{2, 1}, {11, 1}, {7, 1}}));
  // Same bucket (577 and 600 both round to 1024, 96 and 128 to 128): cached, no timing.
  EXPECT_EQ(tuner.choose(key_for(600, 1000, 128), {2, 11, 7}, time), 11);
  EXPECT_EQ(calls[11], 1);
  EXPECT_EQ(tuner.size(), 1u);
  EXPECT_EQ(tuner.find(key_for(1000, 700, 100)), 11);
  EXPECT_EQ(tuner.find(key_for(2048, 700, 100)), std::nullopt);  // another q bucket: not tuned yet
}

TEST(FlashAutotune, DifferentBucketsAreTunedSeparately) {
  FlashAutotuner tuner;
  int calls = 0;
  // Candidate 1 is faster for long sequences, candidate 2 for short ones.
  auto time_for = [&](int64_t seq) {
    return [&calls, seq](int config) {
      ++calls;
      return config == 1 ? 1.0 + seq / 1000.0 : 1.5;
    };
  };
  EXPECT_EQ(tuner.choose(key_for(64, 64, 8), {1, 2}, time_for(64)), 1);
  EXPECT_EQ(tuner.choose(key_for(4096, 4096, 8), {1, 2}, time_for(4096)), 2);
  EXPECT_EQ(tuner.choose(key_for(4096, 4096, 8, true), {1, 2}, time_for(4096)), 2);
  EXPECT_EQ(calls, 6);
  EXPECT_EQ(tuner.size(), 3u);
  EXPECT_EQ(tuner.choose(key_for(64, 64, 8), {1, 2}, time_for(64)), 1);
  EXPECT_EQ(calls, 6);
}

TEST(FlashAutotune, TiesGoToTheTableDefault) {
  FlashAutotuner tuner;
  EXPECT_EQ(tuner.choose(key_for(128, 128, 8), {5, 3}, [](int) { return 0.25; }), 5);
}

TEST(FlashAutotune, OneCandidateNeedsNoTiming) {
  FlashAutotuner tuner;
  EXPECT_EQ(tuner.choose(key_for(1, 600, 288), {4}, [](int) -> double { throw std::logic_error("timed"); }), 4);
  EXPECT_EQ(tuner.size(), 0u);
}

TEST(FlashAutotune, AFailingCandidateIsSkippedAndReported) {
  FlashAutotuner tuner;
  std::vector<TuneDecision> decisions;
  tuner.set_observer([&](const TuneDecision& d) { decisions.push_back(d); });
  auto time = [](int config) -> double {
    if (config == 8) throw std::runtime_error("launch failed");
    return 1.0;
  };
  EXPECT_EQ(tuner.choose(key_for(577, 577, 96), {8, 1}, time), 1);
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0].config, 1);
  ASSERT_EQ(decisions[0].timings.size(), 2u);
  EXPECT_EQ(decisions[0].timings[0].config, 8);
  EXPECT_LT(decisions[0].timings[0].ms, 0.0);
  EXPECT_EQ(decisions[0].timings[0].failure, "launch failed");
  EXPECT_DOUBLE_EQ(decisions[0].timings[1].ms, 1.0);
}

TEST(FlashAutotune, AllCandidatesFailingThrowsAndCachesNothing) {
  FlashAutotuner tuner;
  auto failing = [](int) -> double { throw std::runtime_error("no device"); };
  EXPECT_THROW(tuner.choose(key_for(577, 577, 96), {1, 8}, failing), std::runtime_error);
  EXPECT_EQ(tuner.size(), 0u);
  // The next call tunes again and can succeed.
  EXPECT_EQ(tuner.choose(key_for(577, 577, 96), {1, 8}, [](int c) { return c == 8 ? 0.1 : 0.2; }), 8);
}

TEST(FlashAutotune, ConcurrentFirstCallsTimeOnce) {
  FlashAutotuner tuner;
  std::atomic<int> calls{0};
  auto time = [&](int config) {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return config == 2 ? 0.1 : 0.2;
  };
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (tuner.choose(key_for(577, 577, 96), {1, 2}, time) != 2) ++wrong;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(calls.load(), 2);
}

TEST(FlashAutotune, KeyDescriptionNamesTheBucket) {
  EXPECT_EQ(describe(make_tune_key(1, true, 128, true, true, 577, 4097, 96)),
            "cuda:1 bf16 d128 q<=1024 k<=8192 b*h<=128 causal key-lengths");
}

}  // namespace
}  // namespace vlm::flash
