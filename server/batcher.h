#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vlm/model.h"

namespace vlm::server {

class Metrics;

struct BatcherOptions {
  int batch_max = 8;           // images per forward pass
  double batch_wait_ms = 5.0;  // longest a request waits for company
  int queue_capacity = 64;     // requests waiting; the next one is refused with 503
};

// One request's images on their way through a model.
struct BatchJob {
  std::vector<Image> images;
  DetectOptions options;
  std::chrono::steady_clock::time_point enqueued;
  std::chrono::steady_clock::time_point deadline;
  std::promise<std::vector<ImageResult>> promise;
  // Set when the client gave up (disconnect, timeout): the job is dropped if it has not started.
  std::atomic<bool> cancelled{false};
};

// Dynamic batching for one model (Triton-style): one worker thread owns the model, gathers queued
// requests that share their DetectOptions into one run() of up to batch_max images, waiting at most
// batch_wait_ms for more, and hands each request its own slice of the results.
class Batcher {
 public:
  Batcher(std::string model_name, Model& model, BatcherOptions options, Metrics& metrics);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Throws ApiError 503 (queue_full, with Retry-After) when the queue is at capacity.
  std::shared_ptr<BatchJob> submit(std::vector<Image> images, const DetectOptions& options,
                                   std::chrono::steady_clock::time_point deadline);

  // A request for this model is being decoded and will be submitted soon; while any are, the
  // worker waits (up to batch_wait_ms) for them instead of running a lone request at once.
  class Incoming {
   public:
    explicit Incoming(Batcher& batcher);
    ~Incoming();
    Incoming(const Incoming&) = delete;
    Incoming& operator=(const Incoming&) = delete;

   private:
    Batcher& batcher_;
  };

  // The client gave up: the job leaves the queue at once (its slot is free for others); a job
  // already running finishes and its result is dropped.
  void cancel(const std::shared_ptr<BatchJob>& job, const std::string& reason);

  std::size_t depth() const;
  std::size_t in_flight() const;  // queued plus running
  // Finishes queued work, then stops the worker.
  void stop();

 private:
  void loop();
  std::vector<std::shared_ptr<BatchJob>> gather(std::unique_lock<std::mutex>& lock);
  void run_batch(std::vector<std::shared_ptr<BatchJob>>& batch);

  std::string name_;
  Model& model_;
  BatcherOptions options_;
  Metrics& metrics_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<BatchJob>> queue_;
  std::atomic<int> incoming_{0};
  std::atomic<std::size_t> running_{0};
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace vlm::server
