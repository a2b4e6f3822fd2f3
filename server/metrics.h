#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
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

// The stages of one inference request, in the order it passes them: the `stage` label of
// vlm_request_stage_seconds. Receive runs from the moment the server has read the request line
// (the HTTP library's stamp) until the request is read and parsed; respond from the model's
// results until the response is written to the socket.
enum class RequestStage { kReceive, kDecode, kQueue, kPreprocess, kForward, kPostprocess, kRespond };
inline constexpr std::size_t kRequestStageCount = 7;
std::string_view request_stage_name(RequestStage stage);

// One model's per-stage histograms. Looked up once per model at load, so a request records its
// stages by index, with no label lookup on the request path.
class StageHistograms {
 public:
  StageHistograms();
  void observe(RequestStage stage, double seconds);
  // Appends the bucket, sum and count lines of every stage, labelled with `model_label`.
  void render(std::string& out, const std::string& model_label) const;

 private:
  mutable std::mutex mutex_;
  std::array<Histogram, kRequestStageCount> histograms_;
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
  // The model's stage histograms, created on first use; the reference stays valid for the life of
  // this Metrics.
  StageHistograms& stage_histograms(const std::string& model);

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
  std::map<std::string, std::unique_ptr<StageHistograms>> stages_;
};

// Escapes a Prometheus label value (backslash, quote, newline).
std::string prometheus_label(const std::string& value);

}  // namespace vlm::server
