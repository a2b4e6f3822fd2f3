#include "generation.h"

#include <algorithm>
#include <mutex>
#include <set>

#include "logits_processor.h"
#include "vlm/error.h"
#include "vlm/logging.h"

namespace vlm::florence2 {
namespace {

// Steps between the host's reads of the "still running" flag: a read waits for the device, so
// reading every step would serialise the host and the GPU; a few wasted steps at the end cost less.
constexpr int kCheckEvery = 8;

// Decode states kept on CUDA: each holds KV caches for batch x beams x max_length positions (about
// 1.8 GB for Florence-2-base in fp16 at batch 32, 3 beams and 1025 positions) and its graph's pool.
constexpr std::size_t kMaxKeptStates = 4;

void log_capture_failure_once(const std::string& reason) {
  static std::mutex mutex;
  static std::set<std::string> seen;
  const std::lock_guard lock(mutex);
  if (seen.insert(reason).second) {
    log::warn("florence2: decode step runs eagerly, CUDA graph capture failed: {}", reason);
  }
}

}  // namespace

DecodeState::DecodeState(const BartDecoder& decoder, const GenerationConfig& config, const DecodeShape& shape,
                         const at::TensorOptions& options)
    : config_(config), search_(make_search(decoder, config, shape, options)), on_cuda_(options.device().is_cuda()) {}

void DecodeState::start(const at::Tensor& encoder_hidden) {
  if (on_cuda_ && !capture_tried_) {
    capture_tried_ = true;
    search_->set_fixed_shapes(true);
    const std::string failure = graph_.capture(
        [&] {
          search_->reset(encoder_hidden);
          search_->step();
          search_->reset(encoder_hidden);
        },
        [&] { search_->step(); });
    if (!failure.empty()) {
      search_->set_fixed_shapes(false);
      log_capture_failure_once(failure);
    }
  }
  search_->reset(encoder_hidden);
}

void DecodeState::step() {
  if (graph_.captured()) {
    graph_.replay();
  } else {
    search_->step();
  }
}

Generated DecodeState::run(const at::Tensor& encoder_hidden, BeamTrace* trace) {
  const int max_length = search_->shape().max_length;
  start(encoder_hidden);
  // With a trace every step is recorded, so the flag is read every step and no step runs past the end.
  const int check_every = trace != nullptr ? 1 : kCheckEvery;
  for (int cur_len = 1; cur_len < max_length;) {
    if (trace != nullptr) trace->running.push_back(search_->prefixes(cur_len));
    step();
    ++cur_len;
    if (cur_len % check_every == 0 && cur_len < max_length && !search_->running().item<bool>()) break;
  }
  return search_->result();
}

Generated Generator::generate(const at::Tensor& encoder_hidden, const GenerationConfig& config, int max_length,
                              BeamTrace* trace) {
  if (max_length < 2) {
    throw Error(ErrorCode::kInvalidArgument, "max_length " + std::to_string(max_length) +
                                                 " leaves no room to generate after the decoder start token");
  }
  const DecodeShape shape{encoder_hidden.size(0), std::max(1, config.num_beams), encoder_hidden.size(1), max_length};
  if (!encoder_hidden.is_cuda()) {
    DecodeState state(decoder_, config, shape, encoder_hidden.options());
    const std::lock_guard lock(mutex_);
    last_graphed_ = false;
    return state.run(encoder_hidden, trace);
  }
  const std::lock_guard lock(mutex_);
  auto it = std::find_if(states_.begin(), states_.end(),
                         [&](const auto& state) { return state->shape() == shape && state->config() == config; });
  if (it == states_.end()) {
    if (states_.size() >= kMaxKeptStates) states_.pop_back();
    states_.push_front(std::make_unique<DecodeState>(decoder_, config, shape, encoder_hidden.options()));
  } else {
    states_.splice(states_.begin(), states_, it);
  }
  DecodeState& state = *states_.front();
  Generated generated = state.run(encoder_hidden, trace);
  last_graphed_ = state.graphed();
  return generated;
}

bool Generator::last_graphed() const {
  const std::lock_guard lock(mutex_);
  return last_graphed_;
}

void process_logits(const at::Tensor& ids, at::Tensor& scores, const GenerationConfig& config, int max_length) {
  const LogitsProcessor processor(config, max_length, scores.size(1), scores.options());
  const at::Tensor cur_len = at::full({}, ids.size(1), ids.options().dtype(at::kLong));
  processor.apply(ids.to(scores.device(), at::kLong), cur_len.to(scores.device()), scores);
}

}  // namespace vlm::florence2
