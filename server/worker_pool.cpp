#include "worker_pool.h"

#include <algorithm>

namespace vlm::server {

WorkerPool::WorkerPool(std::size_t base, std::size_t max, std::size_t max_queued, std::chrono::milliseconds idle)
    : max_(std::max(base, max)), max_queued_(max_queued), idle_timeout_(idle) {
  base_.reserve(base);
  for (std::size_t i = 0; i < base; ++i) base_.emplace_back([this] { work(false); });
}

WorkerPool::~WorkerPool() { shutdown(); }

bool WorkerPool::enqueue(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || (max_queued_ > 0 && jobs_.size() >= max_queued_)) return false;
    jobs_.push_back(std::move(job));
    // Each idle thread takes one queued job; jobs beyond them get threads of their own.
    if (jobs_.size() > idle_ && base_.size() + extra_.size() < max_) {
      reap_finished();
      extra_.emplace_back([this] { work(true); });
    }
  }
  wake_.notify_one();
  return true;
}

void WorkerPool::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;  // shut down already, or being shut down by another caller
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& thread : base_) {
    if (thread.joinable()) thread.join();
  }
  std::list<std::thread> extra;
  {
    std::lock_guard lock(mutex_);
    extra = std::move(extra_);
    extra_.clear();
  }
  for (auto& thread : extra) {
    if (thread.joinable()) thread.join();
  }
  std::lock_guard lock(mutex_);
  reap_finished();
  base_.clear();
}

std::size_t WorkerPool::threads() const {
  std::lock_guard lock(mutex_);
  return base_.size() + extra_.size();
}

void WorkerPool::work(bool extra) {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    const auto ready = [this] { return !jobs_.empty() || stopping_; };
    const bool woke = extra ? wake_.wait_for(lock, idle_timeout_, ready) : (wake_.wait(lock, ready), true);
    --idle_;
    if (!woke || jobs_.empty()) break;  // an idle extra thread, or shutdown with nothing left to run
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // whatever the job holds is released outside the lock
    lock.lock();
  }
  if (!extra) return;
  // Hand this thread to finished_ for a later join (a thread cannot join itself).
  const auto self = std::this_thread::get_id();
  for (auto it = extra_.begin(); it != extra_.end(); ++it) {
    if (it->get_id() == self) {
      finished_.push_back(std::move(*it));
      extra_.erase(it);
      break;
    }
  }
}

void WorkerPool::reap_finished() {
  for (auto& thread : finished_) thread.join();
  finished_.clear();
}

}  // namespace vlm::server
