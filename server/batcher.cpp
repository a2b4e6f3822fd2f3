#include "batcher.h"

#include <algorithm>
#include <exception>

#include "metrics.h"
#include "vlm/error.h"
#include "vlm/logging.h"

namespace vlm::server {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

constexpr auto kPollInterval = std::chrono::milliseconds(20);

}  // namespace

Ticket::Ticket(Batcher& batcher, std::shared_ptr<BatchJob> job)
    : batcher_(&batcher), job_(std::move(job)), result_(job_->promise.get_future()) {}

Ticket::Ticket(Ticket&& other) noexcept
    : batcher_(other.batcher_),
      job_(std::move(other.job_)),
      result_(std::move(other.result_)),
      settled_(other.settled_) {
  other.settled_ = true;
}

Ticket::~Ticket() {
  if (!settled_ && job_) batcher_->cancel(job_, "cancelled");
}

std::vector<ImageResult> Ticket::await(std::chrono::steady_clock::time_point deadline,
                                       const std::function<bool()>& should_stop) {
  // Polled, so a vanished client or a passed deadline frees the queue slot instead of running for nobody.
  while (result_.wait_for(kPollInterval) != std::future_status::ready) {
    if (std::chrono::steady_clock::now() >= deadline) {
      batcher_->cancel(job_, error_code_name(ErrorCode::kTimeout));
      settled_ = true;
      throw Error(ErrorCode::kTimeout, "no result before the request's deadline (--timeout-s)");
    }
    if (should_stop && should_stop()) {
      batcher_->cancel(job_, error_code_name(ErrorCode::kClientClosed));
      settled_ = true;
      throw Error(ErrorCode::kClientClosed, "the client closed the connection");
    }
  }
  settled_ = true;
  return result_.get();
}

Batcher::Batcher(std::string model_name, Model& model, BatcherOptions options, Metrics& metrics)
    : name_(std::move(model_name)), model_(model), options_(options), metrics_(metrics) {
  options_.batch_max = std::max(1, options_.batch_max);
  options_.queue_capacity = std::max(1, options_.queue_capacity);
  worker_ = std::thread([this] { loop(); });
}

Batcher::~Batcher() { stop(); }

Batcher::Incoming::Incoming(Batcher& batcher) : batcher_(batcher) { ++batcher_.incoming_; }

Batcher::Incoming::~Incoming() {
  --batcher_.incoming_;
  batcher_.wake_.notify_all();
}

Ticket Batcher::submit(std::vector<Image> images, const DetectOptions& options,
                       std::chrono::steady_clock::time_point deadline) {
  auto job = std::make_shared<BatchJob>();
  job->images = std::move(images);
  job->options = options;
  job->enqueued = std::chrono::steady_clock::now();
  job->deadline = deadline;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw Error(ErrorCode::kDraining, "the server is shutting down");
    if (queue_.size() >= static_cast<std::size_t>(options_.queue_capacity)) {
      metrics_.count_rejected(name_, std::string(error_code_name(ErrorCode::kQueueFull)));
      throw Error(ErrorCode::kQueueFull, "model '" + name_ + "' has " + std::to_string(queue_.size()) +
                                             " requests waiting, the queue limit; retry later");
    }
    queue_.push_back(job);
  }
  wake_.notify_all();
  return Ticket(*this, std::move(job));
}

void Batcher::cancel(const std::shared_ptr<BatchJob>& job, std::string_view reason) {
  job->cancelled = true;
  std::lock_guard lock(mutex_);
  auto it = std::find(queue_.begin(), queue_.end(), job);
  if (it != queue_.end()) {
    queue_.erase(it);
    metrics_.count_rejected(name_, std::string(reason));
  }
}

std::size_t Batcher::depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Batcher::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

std::vector<std::shared_ptr<BatchJob>> Batcher::gather(std::unique_lock<std::mutex>& lock) {
  std::vector<std::shared_ptr<BatchJob>> batch;
  // The oldest live job leads; cancelled or expired ones are dropped without running.
  while (!queue_.empty() && batch.empty()) {
    auto job = queue_.front();
    queue_.pop_front();
    if (job->cancelled.load()) {
      metrics_.count_rejected(name_, "cancelled");
      continue;
    }
    if (std::chrono::steady_clock::now() >= job->deadline) {
      metrics_.count_rejected(name_, std::string(error_code_name(ErrorCode::kTimeout)));
      job->promise.set_exception(
          std::make_exception_ptr(Error(ErrorCode::kTimeout, "the request waited past its deadline")));
      continue;
    }
    batch.push_back(job);
  }
  if (batch.empty()) return batch;

  const DetectOptions& options = batch.front()->options;
  std::size_t images = batch.front()->images.size();
  const auto wait_until =
      std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                             std::chrono::duration<double, std::milli>(options_.batch_wait_ms));
  const auto limit = static_cast<std::size_t>(options_.batch_max);
  while (images < limit) {
    bool took = false;
    for (auto it = queue_.begin(); it != queue_.end() && images < limit;) {
      auto& job = *it;
      if (!job->cancelled.load() && job->options == options && images + job->images.size() <= limit) {
        images += job->images.size();
        batch.push_back(job);
        it = queue_.erase(it);
        took = true;
      } else {
        ++it;
      }
    }
    if (images >= limit || stopping_) break;
    // Waiting only pays when another request is on its way; a lone client is not delayed.
    if (!took && incoming_.load() == 0) break;
    if (std::chrono::steady_clock::now() >= wait_until) break;
    wake_.wait_until(lock, wait_until);
  }
  return batch;
}

void Batcher::run_batch(std::vector<std::shared_ptr<BatchJob>>& batch) {
  std::vector<Image> images;
  std::vector<std::size_t> counts;
  for (auto& job : batch) {
    metrics_.observe_queue_wait(name_, seconds_since(job->enqueued));
    counts.push_back(job->images.size());
    for (auto& image : job->images) images.push_back(std::move(image));
    job->images.clear();
  }
  const auto start = std::chrono::steady_clock::now();
  try {
    std::vector<ImageResult> results = model_.run(images, batch.front()->options);
    metrics_.observe_batch(name_, static_cast<int>(images.size()), seconds_since(start));
    if (results.size() != images.size()) {
      throw Error(ErrorCode::kInternal, "model returned " + std::to_string(results.size()) + " results for " +
                                            std::to_string(images.size()) + " images");
    }
    // Each image carries its share of the batch's timings; their sum is the batch's own.
    BatchRun run{start, {}, static_cast<int>(images.size())};
    for (const ImageResult& result : results) {
      run.model.preprocess_ms += result.timings.preprocess_ms;
      run.model.inference_ms += result.timings.inference_ms;
      run.model.postprocess_ms += result.timings.postprocess_ms;
    }
    for (auto& job : batch) job->run = run;
    auto next = results.begin();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto end = next + static_cast<std::ptrdiff_t>(counts[i]);
      batch[i]->promise.set_value(
          std::vector<ImageResult>(std::make_move_iterator(next), std::make_move_iterator(end)));
      next = end;
    }
  } catch (...) {
    auto error = std::current_exception();
    for (auto& job : batch) job->promise.set_exception(error);
  }
}

void Batcher::loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    auto batch = gather(lock);
    if (batch.empty()) continue;
    lock.unlock();
    run_batch(batch);
    lock.lock();
  }
}

}  // namespace vlm::server
