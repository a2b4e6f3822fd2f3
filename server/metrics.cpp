#include "metrics.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

namespace vlm::server {
namespace {

const std::vector<double> kLatencyBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64};
// Stages range from a tenth of a millisecond (a small JPEG's decode, a batch's post-processing) to
// seconds (a Florence-2 generation, a long queue).
const std::vector<double> kStageBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
constexpr std::array<std::string_view, kRequestStageCount> kStageNames = {
    "receive", "decode", "queue", "preprocess", "forward", "postprocess", "respond"};

std::string format_value(double value) {
  if (value == std::numeric_limits<double>::infinity()) return "+Inf";
  return fmt::format("{}", value);
}

Histogram& entry(std::map<std::string, Histogram>& map, const std::string& key, const std::vector<double>& bounds) {
  auto it = map.find(key);
  if (it == map.end()) it = map.emplace(key, Histogram(bounds)).first;
  return it->second;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  ++counts_[static_cast<std::size_t>(it - bounds_.begin())];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const double bound = i < bounds_.size() ? bounds_[i] : std::numeric_limits<double>::infinity();
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, format_value(bound), cumulative);
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, format_value(sum_), name, braces, count_);
}

std::string_view request_stage_name(RequestStage stage) { return kStageNames.at(static_cast<std::size_t>(stage)); }

StageHistograms::StageHistograms() { histograms_.fill(Histogram(kStageBounds)); }

void StageHistograms::observe(RequestStage stage, double seconds) {
  std::lock_guard lock(mutex_);
  histograms_[static_cast<std::size_t>(stage)].observe(seconds);
}

void StageHistograms::render(std::string& out, const std::string& model_label) const {
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < kRequestStageCount; ++i) {
    histograms_[i].render(out, "vlm_request_stage_seconds",
                          fmt::format("model=\"{}\",stage=\"{}\"", model_label, kStageNames[i]));
  }
}

std::string prometheus_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Metrics::observe_request(const std::string& route, const std::string& method, int status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, method, status}];
  entry(latency_, route, kLatencyBounds).observe(seconds);
}

void Metrics::observe_batch(const std::string& model, int images, double forward_seconds) {
  std::lock_guard lock(mutex_);
  entry(batch_size_, model, kBatchBounds).observe(images);
  entry(forward_seconds_, model, kLatencyBounds).observe(forward_seconds);
  images_[model] += static_cast<std::uint64_t>(images);
  ++batches_[model];
}

void Metrics::observe_queue_wait(const std::string& model, double seconds) {
  std::lock_guard lock(mutex_);
  entry(queue_wait_, model, kLatencyBounds).observe(seconds);
}

void Metrics::set_model_load_seconds(const std::string& model, double seconds) {
  std::lock_guard lock(mutex_);
  load_seconds_[model] = seconds;
}

void Metrics::count_rejected(const std::string& model, const std::string& reason) {
  std::lock_guard lock(mutex_);
  ++rejected_[{model, reason}];
}

StageHistograms& Metrics::stage_histograms(const std::string& model) {
  std::lock_guard lock(mutex_);
  auto& slot = stages_[model];
  if (!slot) slot = std::make_unique<StageHistograms>();
  return *slot;
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP vlm_http_requests_total HTTP requests answered, by route, method and status.\n";
  out += "# TYPE vlm_http_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    const auto& [route, method, status] = key;
    out += fmt::format("vlm_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}\n",
                       prometheus_label(route), prometheus_label(method), status, count);
  }
  out += "# HELP vlm_http_request_duration_seconds Time from request start to response, by route.\n";
  out += "# TYPE vlm_http_request_duration_seconds histogram\n";
  for (const auto& [route, histogram] : latency_) {
    histogram.render(out, "vlm_http_request_duration_seconds", fmt::format("route=\"{}\"", prometheus_label(route)));
  }
  out += "# HELP vlm_batch_size Images per forward pass, by model.\n# TYPE vlm_batch_size histogram\n";
  for (const auto& [model, histogram] : batch_size_) {
    histogram.render(out, "vlm_batch_size", fmt::format("model=\"{}\"", prometheus_label(model)));
  }
  out += "# HELP vlm_forward_seconds Duration of one batched model call, by model.\n";
  out += "# TYPE vlm_forward_seconds histogram\n";
  for (const auto& [model, histogram] : forward_seconds_) {
    histogram.render(out, "vlm_forward_seconds", fmt::format("model=\"{}\"", prometheus_label(model)));
  }
  out += "# HELP vlm_queue_wait_seconds Time a request waited for its batch, by model.\n";
  out += "# TYPE vlm_queue_wait_seconds histogram\n";
  for (const auto& [model, histogram] : queue_wait_) {
    histogram.render(out, "vlm_queue_wait_seconds", fmt::format("model=\"{}\"", prometheus_label(model)));
  }
  out +=
      "# HELP vlm_request_stage_seconds Time an inference request spent in each stage, by model and stage: "
      "receive, decode, queue, preprocess, forward, postprocess (its batch's), respond.\n";
  out += "# TYPE vlm_request_stage_seconds histogram\n";
  for (const auto& [model, histograms] : stages_) histograms->render(out, prometheus_label(model));
  out += "# HELP vlm_images_processed_total Images run through a model.\n# TYPE vlm_images_processed_total counter\n";
  for (const auto& [model, count] : images_) {
    out += fmt::format("vlm_images_processed_total{{model=\"{}\"}} {}\n", prometheus_label(model), count);
  }
  out += "# HELP vlm_batches_total Forward passes run.\n# TYPE vlm_batches_total counter\n";
  for (const auto& [model, count] : batches_) {
    out += fmt::format("vlm_batches_total{{model=\"{}\"}} {}\n", prometheus_label(model), count);
  }
  out += "# HELP vlm_requests_rejected_total Requests refused before running, by model and reason.\n";
  out += "# TYPE vlm_requests_rejected_total counter\n";
  for (const auto& [key, count] : rejected_) {
    out += fmt::format("vlm_requests_rejected_total{{model=\"{}\",reason=\"{}\"}} {}\n", prometheus_label(key.first),
                       prometheus_label(key.second), count);
  }
  out += "# HELP vlm_model_load_seconds Time to load and warm up a model.\n# TYPE vlm_model_load_seconds gauge\n";
  for (const auto& [model, seconds] : load_seconds_) {
    out += fmt::format("vlm_model_load_seconds{{model=\"{}\"}} {}\n", prometheus_label(model), format_value(seconds));
  }
  return out;
}

}  // namespace vlm::server
