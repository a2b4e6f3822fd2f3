// The HTTP server's connection workers (server/worker_pool.h): a burst of jobs that each hold their
// worker gets a thread per job up to the maximum, the queue bound refuses the rest, idle extra threads
// end, and shutdown runs what was queued.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "worker_pool.h"

namespace vlm::server {
namespace {

using namespace std::chrono_literals;

// Jobs that hold their worker until released, as a slow client's connection does.
class HeldJobs {
 public:
  std::function<void()> job() {
    return [this] {
      std::unique_lock lock(mutex_);
      ++running_;
      changed_.notify_all();
      changed_.wait(lock, [this] { return released_; });
      --running_;
      ++done_;
      changed_.notify_all();
    };
  }
  // True when `count` jobs run at once within `limit`.
  bool wait_running(int count, std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return running_ >= count; });
  }
  int running() {
    std::lock_guard lock(mutex_);
    return running_;
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }
  int done() {
    std::lock_guard lock(mutex_);
    return done_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int running_ = 0;
  int done_ = 0;
  bool released_ = false;
};

// Releases the held jobs when a test ends early (a failed ASSERT): declared after the pool, it goes first,
// and the pool's shutdown can then join its threads.
struct ReleaseOnExit {
  HeldJobs& held;
  ~ReleaseOnExit() { held.release(); }
};

TEST(WorkerPool, BurstOfHeldJobsGetsAThreadEachUpToTheMaximum) {
  // One idle base thread and a burst enqueued before it wakes: httplib's ThreadPool adds no thread
  // while that thread still counts as idle, so all but one job of the burst wait for it.
  for (int round = 0; round < 20; ++round) {
    HeldJobs held;
    WorkerPool pool(1, 16, 64);
    const ReleaseOnExit guard{held};
    for (int i = 0; i < 16; ++i) ASSERT_TRUE(pool.enqueue(held.job()));
    EXPECT_TRUE(held.wait_running(16, 5s)) << "round " << round << ": " << held.running() << " of 16 running";
    EXPECT_EQ(pool.threads(), 16u);
    held.release();
    pool.shutdown();
    EXPECT_EQ(held.done(), 16);
  }
}

TEST(WorkerPool, JobsBeyondTheMaximumWaitAndTheQueueBoundRefusesMore) {
  HeldJobs held;
  WorkerPool pool(2, 4, 3);
  const ReleaseOnExit guard{held};
  // One at a time: a job counts against max_queued until a thread takes it, and threads start late on
  // a loaded machine.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(pool.enqueue(held.job()));
    ASSERT_TRUE(held.wait_running(i + 1, 5s)) << held.running() << " of " << i + 1 << " running";
  }
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(pool.enqueue(held.job())) << "queued job " << i;
  EXPECT_FALSE(pool.enqueue(held.job())) << "a fourth queued job is over max_queued";
  EXPECT_EQ(pool.threads(), 4u);
  EXPECT_EQ(held.running(), 4);
  held.release();
  pool.shutdown();
  EXPECT_EQ(held.done(), 7);
  EXPECT_FALSE(pool.enqueue([] {})) << "a shut-down pool takes no job";
}

TEST(WorkerPool, IdleExtraThreadsEndAndBaseThreadsStay) {
  HeldJobs held;
  HeldJobs again;
  WorkerPool pool(2, 8, 0, 100ms);
  const ReleaseOnExit guard{held};
  const ReleaseOnExit guard_again{again};
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(pool.enqueue(held.job()));
  ASSERT_TRUE(held.wait_running(8, 5s));
  held.release();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (pool.threads() > 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(pool.threads(), 2u);
  // The pool grows again after its extra threads have ended (their threads are joined on the way).
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(pool.enqueue(again.job()));
  EXPECT_TRUE(again.wait_running(6, 5s)) << again.running() << " of 6 running";
  again.release();
}

TEST(WorkerPool, ShutdownRunsEveryQueuedJob) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(1, 1, 0);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(pool.enqueue([&ran] { ++ran; }));
  }
  EXPECT_EQ(ran.load(), 100);
}

}  // namespace
}  // namespace vlm::server
