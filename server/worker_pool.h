#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

namespace vlm::server {

// The HTTP server's connection workers: `base` threads that live as long as the pool, and up to `max`
// in all, a thread added whenever a job is queued with every worker busy. Extra threads end after
// `idle` without work. At most `max_queued` jobs wait; enqueue refuses more.
//
// Why not httplib's ThreadPool: it adds a thread only when its count of idle threads is 0, and a
// thread stays counted idle from the notify that wakes it until it takes its job, so a burst of
// connections accepted together is queued behind one waking thread. A connection queued behind
// workers held by slow clients then waits for their header deadline (seconds), whatever `max` is.
// Here a job gets a new thread whenever the queue holds more jobs than there are idle threads.
class WorkerPool {
 public:
  WorkerPool(std::size_t base, std::size_t max, std::size_t max_queued,
             std::chrono::milliseconds idle = std::chrono::seconds(3));
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False when the queue is full or the pool is shut down; `job` is then dropped unrun.
  bool enqueue(std::function<void()> job);
  // Runs every queued job, then joins every thread. Idempotent.
  void shutdown();

  std::size_t threads() const;  // running now

 private:
  void work(bool extra);
  void reap_finished();  // with mutex_ held

  const std::size_t max_;
  const std::size_t max_queued_;
  const std::chrono::milliseconds idle_timeout_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::list<std::function<void()>> jobs_;
  std::size_t idle_ = 0;  // threads waiting for a job
  bool stopping_ = false;
  std::vector<std::thread> base_;
  std::list<std::thread> extra_;
  std::vector<std::thread> finished_;  // extra threads that ended, joined later
};

}  // namespace vlm::server
