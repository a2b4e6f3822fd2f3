#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "vlm/error.h"
#include "vlm/image.h"
#include "vlm/model.h"

namespace vlm::server {

class Metrics;

struct BatcherOptions {
  int batch_max = 8;           // images per forward pass
  double batch_wait_ms = 5.0;  // longest a request waits for company
  int queue_capacity = 64;     // requests waiting; the next one is refused with queue_full
};

// The run a job's images went through: when its batch started, and the model's own timings summed
// over the whole batch (a request waits for all of its batch, not its share).
struct BatchRun {
  std::chrono::steady_clock::time_point started;
  Timings model;
  int images = 0;  // in the batch, this job's and its companions'
};

// One request's images on their way through a model.
struct BatchJob {
  std::vector<Image> images;
  DetectOptions options;
  std::chrono::steady_clock::time_point enqueued;
  std::chrono::steady_clock::time_point deadline;
  std::promise<std::vector<ImageResult>> promise;
  BatchRun run;  // written by the worker before the promise is set, read by the holder after
  // Set when the client gave up (disconnect, timeout): the job is dropped if it has not started.
  std::atomic<bool> cancelled{false};
};

class Batcher;

// A submitted job, from Batcher::submit until its result is taken. Whatever way the holder leaves
// (result, timeout, client gone, an exception of its own), the job is cancelled unless it finished:
// a queued job leaves the queue at once, freeing its slot; a running one finishes for nobody.
class Ticket {
 public:
  Ticket(Batcher& batcher, std::shared_ptr<BatchJob> job);
  ~Ticket();
  Ticket(Ticket&& other) noexcept;
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  Ticket& operator=(Ticket&&) = delete;

  // The job's results, once. Waits until `deadline` (throws vlm::Error timeout) and polls
  // should_stop every 20 ms (true: throws client_closed); rethrows the model's error.
  std::vector<ImageResult> await(std::chrono::steady_clock::time_point deadline,
                                 const std::function<bool()>& should_stop);
  // The batch the job ran in; valid once await() has returned results.
  const BatchRun& run() const { return job_->run; }

 private:
  Batcher* batcher_;
  std::shared_ptr<BatchJob> job_;
  std::future<std::vector<ImageResult>> result_;
  bool settled_ = false;  // the result (or the model's error) was taken
};

// Dynamic batching for one model (Triton-style): one worker thread owns the model, gathers queued
// requests that share their DetectOptions into one run() of up to batch_max images, waiting at most
// batch_wait_ms for more, and hands each request its own slice of the results. Knows nothing of
// HTTP: its refusals and outcomes are vlm::Error codes (queue_full, draining, timeout).
class Batcher {
 public:
  Batcher(std::string model_name, Model& model, BatcherOptions options, Metrics& metrics);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Throws vlm::Error queue_full when the queue is at capacity, draining once stop() was called.
  Ticket submit(std::vector<Image> images, const DetectOptions& options,
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

  std::size_t depth() const;
  // Finishes queued work, then stops the worker.
  void stop();

 private:
  friend class Ticket;
  // The job's holder gave up (`reason`: the label of vlm_requests_rejected_total): a queued job
  // leaves the queue at once; one already running finishes and its result is dropped.
  void cancel(const std::shared_ptr<BatchJob>& job, std::string_view reason);
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
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace vlm::server
