#include "request_stages.h"

namespace vlm::server {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

StageTimes record_stages(StageHistograms& histograms, const StageMarks& marks, const BatchRun& run) {
  StageTimes times;
  times.receive_ms = ms_between(marks.start, marks.decode_start);
  times.decode_ms = ms_between(marks.decode_start, marks.decode_end);
  times.queue_ms = ms_between(marks.decode_end, run.started);
  times.preprocess_ms = run.model.preprocess_ms;
  times.forward_ms = run.model.inference_ms;
  times.postprocess_ms = run.model.postprocess_ms;
  histograms.observe(RequestStage::kReceive, times.receive_ms / 1e3);
  histograms.observe(RequestStage::kDecode, times.decode_ms / 1e3);
  histograms.observe(RequestStage::kQueue, times.queue_ms / 1e3);
  histograms.observe(RequestStage::kPreprocess, times.preprocess_ms / 1e3);
  histograms.observe(RequestStage::kForward, times.forward_ms / 1e3);
  histograms.observe(RequestStage::kPostprocess, times.postprocess_ms / 1e3);
  return times;
}

std::function<void()> respond_recorder(StageHistograms& histograms, Clock::time_point results_at) {
  return [&histograms, results_at] {
    histograms.observe(RequestStage::kRespond, ms_between(results_at, Clock::now()) / 1e3);
  };
}

}  // namespace vlm::server
