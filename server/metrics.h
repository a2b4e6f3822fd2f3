#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace vlm::server {

// Cumulative Prometheus histogram with fixed upper bounds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds = {});
  void observe(double value);
  // Appends `name_bucket{labels,le=...}`, `name_sum{labels}` and `name_count{labels}` lines.
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // one per bound plus +Inf
  double sum_ = 0.0;
  std::uint64_t count_ = 0;
};

// Process-wide counters behind GET /metrics. Route labels are route-table paths (or "unmatched"),
// never raw client paths, so a client cannot grow the label set.
class Metrics {
 public:
  void observe_request(const std::string& route, const std::string& method, int status, double seconds);
  void observe_batch(const std::string& model, int images, double forward_seconds);
  void observe_queue_wait(const std::string& model, double seconds);
  void set_model_load_seconds(const std::string& model, double seconds);
  void count_rejected(const std::string& model, const std::string& reason);

  // Prometheus text exposition (version 0.0.4) of everything above.
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;  // by route
  std::map<std::string, Histogram> batch_size_;
  std::map<std::string, Histogram> forward_seconds_;
  std::map<std::string, Histogram> queue_wait_;
  std::map<std::string, std::uint64_t> images_;
  std::map<std::string, std::uint64_t> batches_;
  std::map<std::string, double> load_seconds_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> rejected_;
};

// Escapes a Prometheus label value (backslash, quote, newline).
std::string prometheus_label(const std::string& value);

}  // namespace vlm::server
