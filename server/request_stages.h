#pragma once

#include <chrono>
#include <functional>

#include "batcher.h"
#include "metrics.h"

namespace vlm::server {

// When an inference request passed from one stage to the next, as its handler saw it.
struct StageMarks {
  std::chrono::steady_clock::time_point start;         // the request line was read
  std::chrono::steady_clock::time_point decode_start;  // the request is read and parsed
  std::chrono::steady_clock::time_point decode_end;    // its images are decoded and go to the batcher
};

// A request's stages up to its results, in milliseconds. The model stages are the ones run()
// measured for the request's whole batch: timing them here would need a device sync of our own.
struct StageTimes {
  double receive_ms = 0.0;
  double decode_ms = 0.0;
  double queue_ms = 0.0;
  double preprocess_ms = 0.0;
  double forward_ms = 0.0;
  double postprocess_ms = 0.0;
};

// Records every stage up to the results into `histograms` and returns them.
StageTimes record_stages(StageHistograms& histograms, const StageMarks& marks, const BatchRun& run);

// The HttpResponse::on_written that records the respond stage: from `results_at` (the model's
// results are back) until the response is written.
std::function<void()> respond_recorder(StageHistograms& histograms, std::chrono::steady_clock::time_point results_at);

}  // namespace vlm::server
