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

// The smallest length bucket, in new tokens: shorter answers gain little from a smaller cache.
constexpr int kSmallestBucket = 64;

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
                         const at::TensorOptions& options, bool capture_graph)
    : config_(shape_settings(config)),
      search_(make_search(decoder, config_, shape, options)),
      capture_graph_(capture_graph && options.device().is_cuda()) {}

void DecodeState::start(const at::Tensor& encoder_hidden, const GenerationValues& values) {
  if (values.max_length < 2 || values.max_length > shape().capacity) {
    throw Error(ErrorCode::kInvalidArgument, "max_length " + std::to_string(values.max_length) +
                                                 " is outside this decode state's range 2.." +
                                                 std::to_string(shape().capacity));
  }
  if (values.no_repeat_ngram_size < 0 || values.no_repeat_ngram_size > config_.no_repeat_ngram_size) {
    throw Error(ErrorCode::kInvalidArgument, "no_repeat_ngram_size " + std::to_string(values.no_repeat_ngram_size) +
                                                 " is outside this decode state's range 0.." +
                                                 std::to_string(config_.no_repeat_ngram_size));
  }
  max_length_ = values.max_length;
  if (capture_graph_ && !capture_tried_) {
    capture_tried_ = true;
    search_->set_fixed_shapes(true);
    const std::string failure = graph_.capture(
        [&] {
          search_->reset(encoder_hidden, values);
          search_->step();
          search_->reset(encoder_hidden, values);
        },
        [&] { search_->step(); });
    if (!failure.empty()) {
      search_->set_fixed_shapes(false);
      log_capture_failure_once(failure);
    }
  }
  search_->reset(encoder_hidden, values);
}

void DecodeState::step() {
  if (graph_.captured()) {
    graph_.replay();
  } else {
    search_->step();
  }
}

Generated DecodeState::run(const at::Tensor& encoder_hidden, const GenerationValues& values, BeamTrace* trace) {
  start(encoder_hidden, values);
  const int max_length = max_length_;
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

int length_bucket(int max_length, int ceiling) {
  if (max_length > ceiling) return max_length;
  int new_tokens = kSmallestBucket;
  while (1 + new_tokens < max_length && 1 + new_tokens < ceiling) new_tokens *= 2;
  return std::min(1 + new_tokens, ceiling);
}

Generator::Generator(const BartDecoder& decoder, int max_length_ceiling, std::size_t kept_states, bool capture_graphs)
    : decoder_(decoder),
      max_length_ceiling_(max_length_ceiling),
      kept_states_(std::max<std::size_t>(1, kept_states)),
      capture_graphs_(capture_graphs) {}

Generated Generator::generate(const at::Tensor& encoder_hidden, const GenerationConfig& config, int max_length,
                              BeamTrace* trace) {
  if (max_length < 2) {
    throw Error(ErrorCode::kInvalidArgument, "max_length " + std::to_string(max_length) +
                                                 " leaves no room to generate after the decoder start token");
  }
  const DecodeShape shape{encoder_hidden.size(0), std::max(1, config.num_beams), encoder_hidden.size(1),
                          length_bucket(max_length, max_length_ceiling_)};
  const GenerationConfig settings = shape_settings(config);
  const std::lock_guard lock(mutex_);
  auto it = std::find_if(states_.begin(), states_.end(),
                         [&](const auto& state) { return state->shape() == shape && state->config() == settings; });
  if (it == states_.end()) {
    // Each holds KV caches for batch x beams x capacity positions (about 1.8 GB for Florence-2-base in
    // fp16 at batch 32, 3 beams and 1025 positions) and, on CUDA, its graph's pool.
    if (states_.size() >= kept_states_) states_.pop_back();
    states_.push_front(
        std::make_unique<DecodeState>(decoder_, settings, shape, encoder_hidden.options(), capture_graphs_));
    ++states_created_;
    log::info(
        "florence2: new decode state for batch {}, {} beam(s), encoder length {}: max_length {} takes the "
        "length bucket of {} positions, which serves every max_length up to it",
        shape.batch, shape.beams, shape.encoder_length, max_length, shape.capacity);
  } else {
    states_.splice(states_.begin(), states_, it);
  }
  DecodeState& state = *states_.front();
  Generated generated = state.run(encoder_hidden, generation_values(config, max_length), trace);
  last_graphed_ = state.graphed();
  return generated;
}

bool Generator::last_graphed() const {
  const std::lock_guard lock(mutex_);
  return last_graphed_;
}

std::size_t Generator::states_created() const {
  const std::lock_guard lock(mutex_);
  return states_created_;
}

void process_logits(const at::Tensor& ids, at::Tensor& scores, const GenerationConfig& config, int max_length) {
  const LogitsProcessor processor(config, scores.size(1), scores.options());
  const auto long_options = scores.options().dtype(at::kLong);
  const ProcessorValues values{at::full({}, max_length, long_options),
                               at::full({}, config.no_repeat_ngram_size, long_options)};
  processor.apply(ids.to(scores.device(), at::kLong), at::full({}, ids.size(1), long_options), values, scores);
}

}  // namespace vlm::florence2
