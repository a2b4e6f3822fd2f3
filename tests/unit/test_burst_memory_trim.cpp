// The trim after a burst (server/burst_memory_trim.h): one trim once the burst has been quiet for
// its period and no request runs; none while a request runs or activity goes on; none for lone
// requests. Waits are generous bounds, so a loaded machine only makes the test slower.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "burst_memory_trim.h"

namespace vlm::server {
namespace {

using namespace std::chrono_literals;

// True when `trim` has done `count` trims within `limit`.
bool wait_trims(const BurstMemoryTrim& trim, long long count, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (trim.trims() < count) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(BurstMemoryTrim, TrimsOnceAfterABurstIsQuiet) {
  BurstMemoryTrim trim([] { return false; }, 50ms);
  for (int i = 0; i < 10; ++i) trim.note_burst();
  EXPECT_TRUE(wait_trims(trim, 1, 5s));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(trim.trims(), 1) << "one burst, one trim";
  trim.note_burst();
  EXPECT_TRUE(wait_trims(trim, 2, 5s)) << "the next burst trims again";
}

TEST(BurstMemoryTrim, LoneRequestsDoNotTrim) {
  BurstMemoryTrim trim([] { return false; }, 20ms);
  for (int i = 0; i < 5; ++i) {
    trim.note_activity();
    std::this_thread::sleep_for(30ms);
  }
  EXPECT_EQ(trim.trims(), 0);
}

TEST(BurstMemoryTrim, WaitsWhileARequestRuns) {
  std::atomic<bool> busy{true};
  BurstMemoryTrim trim([&] { return busy.load(); }, 20ms);
  trim.note_burst();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(trim.trims(), 0) << "trimmed while a request ran";
  busy = false;
  EXPECT_TRUE(wait_trims(trim, 1, 5s));
}

TEST(BurstMemoryTrim, TrimsOnlyAQuietPeriodAfterTheLastActivity) {
  using Clock = std::chrono::steady_clock;
  // The trim thread asks `busy` only once it counts the quiet period as over.
  std::atomic<Clock::rep> first_asked{0};
  BurstMemoryTrim trim(
      [&] {
        Clock::rep none = 0;
        first_asked.compare_exchange_strong(none, Clock::now().time_since_epoch().count());
        return false;
      },
      200ms);
  // Activity every 20 ms for 600 ms, so the trim comes after the loop unless the test thread stalls
  // for the quiet period. Each time is taken before its call: a stall can only make the check
  // below easier to pass, never fail it.
  std::vector<Clock::time_point> notes{Clock::now()};
  trim.note_burst();
  while (Clock::now() - notes.front() < 600ms) {
    std::this_thread::sleep_for(20ms);
    notes.push_back(Clock::now());
    trim.note_activity();
  }
  ASSERT_TRUE(wait_trims(trim, 1, 5s));
  const Clock::time_point asked{Clock::duration(first_asked.load())};
  Clock::time_point last_before = notes.front();
  for (const auto& note : notes)
    if (note < asked) last_before = note;
  EXPECT_GE(asked - last_before, 200ms) << "the trim came before the quiet period after the last activity ended";
}

TEST(BurstMemoryTrim, StopsPromptlyWithATrimPending) {
  const auto start = std::chrono::steady_clock::now();
  {
    BurstMemoryTrim trim([] { return true; }, 10s);
    trim.note_burst();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

}  // namespace
}  // namespace vlm::server
