#include "search.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "greedy_select.h"

namespace vlm::florence2 {
namespace {

using EarlyStopping = GenerationConfig::EarlyStopping;
constexpr double kLarge = 1.0e9;  // transformers' "very large negative" for excluded beams

// indices [batch, k] with trailing unit dims up to `dims`, to gather along the beam dim (1).
at::Tensor beam_index(at::Tensor indices, int64_t dims) {
  while (indices.dim() < dims) indices = indices.unsqueeze(-1);
  return indices;
}

at::Tensor gather_beams(const at::Tensor& tensor, const at::Tensor& indices) {
  return at::take_along_dim(tensor, beam_index(indices, tensor.dim()), 1);
}

// gather_beams written straight into `out` (a state buffer): no copy kernel after the gather.
void gather_beams_into(at::Tensor& out, const at::Tensor& tensor, const at::Tensor& indices) {
  at::gather_out(out, tensor, 1, beam_index(indices, tensor.dim()).expand(out.sizes()));
}

// transformers' length normalisation divides a score by length ** length_penalty, the power taken in
// double as Python takes it, the division in float32: the divisors of every length a state can reach,
// written into `out` (float32, on the host) per request, so that the step only indexes them.
void fill_length_divisors(double length_penalty, at::Tensor& out) {
  float* divisors = out.data_ptr<float>();
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    divisors[i] = static_cast<float>(std::pow(static_cast<double>(i), length_penalty));
  }
}

class GreedySearch final : public Search {
 public:
  GreedySearch(const BartDecoder& decoder, const GenerationConfig& config, const DecodeShape& shape,
               const at::TensorOptions& options)
      : Search(shape),
        decoder_(decoder),
        config_(config),
        selector_(config, decoder.config().vocab_size, shape.batch, options) {
    const auto long_options = options.dtype(at::kLong);
    cache_ = decoder.start(at::zeros({shape.batch, shape.encoder_length, decoder.config().d_model}, options), 1,
                           shape.capacity);
    state_.ids = at::empty({shape.batch, shape.capacity}, long_options);
    state_.position = at::zeros({}, long_options);
    state_.values = {at::zeros({}, long_options), at::zeros({}, long_options)};
    state_.length = at::zeros({}, long_options);
    state_.unfinished = at::empty({shape.batch}, options.dtype(at::kBool));
    state_.token_log_probs = at::empty({shape.batch, shape.capacity}, options.dtype(at::kFloat));
  }

  void reset(const at::Tensor& encoder_hidden, const GenerationValues& values) override {
    decoder_.restart(encoder_hidden, cache_);
    state_.values.max_length.fill_(values.max_length);
    state_.values.no_repeat_ngram_size.fill_(values.no_repeat_ngram_size);
    state_.ids.fill_(config_.pad_token_id);
    state_.ids.select(1, 0).fill_(config_.decoder_start_token_id);
    state_.position.zero_();
    state_.length.fill_(1);
    state_.unfinished.fill_(true);
    state_.token_log_probs.zero_();
  }

  void step() override { selector_.select(decoder_.step(state_.ids, state_.position, cache_), state_); }

  at::Tensor running() const override { return state_.unfinished.any(); }

  Generated result() const override {
    const auto length = state_.length.item<std::int64_t>();
    return {state_.ids.narrow(1, 0, length).to(at::kCPU).clone(),
            state_.token_log_probs.narrow(1, 0, length).to(at::kCPU).clone()};
  }

  at::Tensor prefixes(int cur_len) const override { return state_.ids.narrow(1, 0, cur_len).to(at::kCPU).clone(); }

 private:
  const BartDecoder& decoder_;
  GenerationConfig config_;
  GreedySelector selector_;
  KvCache cache_;
  GreedyState state_;
};

// A port of transformers' vectorized `_beam_search` (length_penalty, early_stopping
// true/false/"never"), including its tie-breaking through topk. Every per-step host decision of
// the original is a tensor here; once the stopping rule fires, `active_` freezes the finished
// beams so that further steps change nothing.
class BeamSearch final : public Search {
 public:
  BeamSearch(const BartDecoder& decoder, const GenerationConfig& config, const DecodeShape& shape,
             const at::TensorOptions& options)
      : Search(shape),
        decoder_(decoder),
        config_(config),
        processor_(config, decoder.config().vocab_size, options),
        eos_(eos_tensor(config, options)),
        keep_(std::max<std::int64_t>(2, 1 + static_cast<std::int64_t>(config.eos_token_ids.size())) * shape.beams) {
    const auto long_options = options.dtype(at::kLong);
    const auto float_options = options.dtype(at::kFloat);
    const auto b = shape.batch;
    const auto k = shape.beams;
    const auto l = shape.capacity;
    cache_ = decoder.start(at::zeros({b, shape.encoder_length, decoder.config().d_model}, options), k, l);
    top_beam_mask_ =
        at::cat({at::ones({k}, options.dtype(at::kBool)), at::zeros({keep_ - k}, options.dtype(at::kBool))});
    batch_offset_ = at::arange(b, long_options).view({-1, 1}) * k;
    kept_beams_ = at::arange(k, long_options).view({1, -1});
    running_sequences_ = at::empty({b, k, l}, long_options);
    sequences_ = at::empty_like(running_sequences_);
    running_scores_ = at::empty({b, k}, float_options);
    beam_scores_ = at::empty_like(running_scores_);
    is_sent_finished_ = at::empty({b, k}, options.dtype(at::kBool));
    heuristic_unsatisfied_ = at::empty({b, 1}, options.dtype(at::kBool));
    running_beam_indices_ = at::empty({b, k, l - 1}, options.dtype(at::kInt));
    running_token_log_probs_ = at::empty({b, k, l}, float_options);
    token_log_probs_ = at::empty_like(running_token_log_probs_);
    beam_indices_ = at::empty_like(running_beam_indices_);
    position_ = at::zeros({}, long_options);
    active_ = at::empty({}, options.dtype(at::kBool));
    values_ = {at::zeros({}, long_options), at::zeros({}, long_options)};
    early_true_ = at::empty({}, options.dtype(at::kBool));
    best_length_is_max_ = at::empty({}, options.dtype(at::kBool));
    length_divisors_ = at::empty({l + 1}, float_options);
    // Pinned on CUDA: the per-request upload is then an asynchronous copy, not a host sync.
    length_divisors_host_ = at::empty({l + 1}, at::TensorOptions(at::kFloat).pinned_memory(options.device().is_cuda()));
  }

  void reset(const at::Tensor& encoder_hidden, const GenerationValues& values) override {
    decoder_.restart(encoder_hidden, cache_);
    values_.max_length.fill_(values.max_length);
    values_.no_repeat_ngram_size.fill_(values.no_repeat_ngram_size);
    early_true_.fill_(values.early_stopping == EarlyStopping::kTrue);
    best_length_is_max_.fill_(values.early_stopping == EarlyStopping::kNever && values.length_penalty > 0.0);
    if (values.length_penalty != divisors_length_penalty_) {
      // The previous upload is done: the previous request's ids were read back after it, in order.
      fill_length_divisors(values.length_penalty, length_divisors_host_);
      length_divisors_.copy_(length_divisors_host_, /*non_blocking=*/true);
      divisors_length_penalty_ = values.length_penalty;
    }
    const int fill = config_.pad_token_id != 0 ? config_.pad_token_id
                                               : (config_.eos_token_ids.empty() ? -1 : config_.eos_token_ids[0]);
    running_sequences_.fill_(fill);
    running_sequences_.select(2, 0).fill_(config_.decoder_start_token_id);
    sequences_.copy_(running_sequences_);
    running_scores_.zero_();
    running_scores_.narrow(1, 1, shape_.beams - 1).fill_(-kLarge);
    beam_scores_.fill_(-kLarge);
    is_sent_finished_.fill_(false);
    heuristic_unsatisfied_.fill_(true);
    running_beam_indices_.fill_(-1);
    beam_indices_.fill_(-1);
    running_token_log_probs_.zero_();
    token_log_probs_.zero_();
    position_.zero_();
    active_.fill_(true);
    steps_issued_ = 0;
  }

  void step() override {
    const auto b = shape_.batch;
    const auto k = shape_.beams;
    const auto l = shape_.capacity;
    const at::Tensor cur_len = position_ + 1;

    const at::Tensor flat_running = running_sequences_.view({b * k, l});
    at::Tensor log_probs = at::log_softmax(decoder_.step(flat_running, position_, cache_).to(at::kFloat), -1);
    processor_.apply(flat_running, cur_len, values_, log_probs);
    const auto vocab = log_probs.size(-1);
    const at::Tensor processed = log_probs.view({b, k * vocab});
    log_probs = (log_probs.view({b, k, vocab}) + running_scores_.unsqueeze(-1)).reshape({b, -1});

    // Top-K continuations over all beams.
    auto [topk_log_probs, topk_indices] = at::topk(log_probs, keep_);
    const at::Tensor topk_beam = topk_indices.div(vocab, "floor");
    // Each candidate's own token log-prob, carried with its sequence as the sequence is.
    at::Tensor topk_running_token_log_probs = gather_beams(running_token_log_probs_, topk_beam);
    topk_running_token_log_probs.scatter_(2, index_at(cur_len, {b, keep_, 1}),
                                          processed.gather(1, topk_indices).unsqueeze(-1));
    at::Tensor topk_running_beam_indices = gather_beams(running_beam_indices_, topk_beam);
    at::Tensor topk_running_sequences = gather_beams(running_sequences_, topk_beam);
    const at::Tensor topk_ids = topk_indices.remainder(vocab);
    topk_running_sequences.scatter_(2, index_at(cur_len, {b, keep_, 1}), topk_ids.unsqueeze(-1));
    topk_running_beam_indices.scatter_(2, index_at(position_, {b, keep_, 1}),
                                       (topk_beam + batch_offset_).to(at::kInt).unsqueeze(-1));

    // Stopping criteria: max length for all, EOS per candidate.
    at::Tensor hits = eos_.numel() > 0 ? (topk_ids.unsqueeze(-1) == eos_).any(-1) : at::zeros_like(topk_ids, at::kBool);
    hits = hits | (cur_len + 1 >= values_.max_length);

    // Running beams for the next step: the best unfinished candidates.
    const at::Tensor topk_running_log_probs = topk_log_probs + hits.to(at::kFloat) * -kLarge;
    const at::Tensor next_topk = std::get<1>(at::topk(topk_running_log_probs, k));
    gather_beams_into(running_sequences_, topk_running_sequences, next_topk);
    gather_beams_into(running_scores_, topk_running_log_probs, next_topk);
    gather_beams_into(running_beam_indices_, topk_running_beam_indices, next_topk);
    gather_beams_into(running_token_log_probs_, topk_running_token_log_probs, next_topk);

    // Finished beams: merge candidates that just ended among the top `beams` with the kept ones.
    const at::Tensor just_finished = hits & top_beam_mask_.unsqueeze(0);
    at::Tensor finished_scores = topk_log_probs / length_divisors_.index_select(0, cur_len.view({1}));
    // Adds -0.0 (which changes no score) unless early_stopping is true.
    finished_scores += (at::all(is_sent_finished_, -1, true) & early_true_).to(at::kFloat) * -kLarge;
    finished_scores += heuristic_unsatisfied_.logical_not().to(at::kFloat) * -kLarge;
    finished_scores += just_finished.logical_not() * -kLarge;
    const at::Tensor merged_sequences = at::cat({sequences_, topk_running_sequences}, 1);
    const at::Tensor merged_scores = at::cat({beam_scores_, finished_scores}, 1);
    const at::Tensor merged_indices = at::cat({beam_indices_, topk_running_beam_indices}, 1);
    const at::Tensor merged_finished = at::cat({is_sent_finished_, just_finished}, 1);
    const at::Tensor merged_token_log_probs = at::cat({token_log_probs_, topk_running_token_log_probs}, 1);
    // After the stopping rule fired, the finished beams stay as they were: the merged tensors' first
    // `beams` entries are the finished beams themselves, so one index choice keeps them.
    const at::Tensor best = at::where(active_, std::get<1>(at::topk(merged_scores, k)), kept_beams_);
    gather_beams_into(sequences_, merged_sequences, best);
    gather_beams_into(beam_scores_, merged_scores, best);
    gather_beams_into(beam_indices_, merged_indices, best);
    gather_beams_into(is_sent_finished_, merged_finished, best);
    gather_beams_into(token_log_probs_, merged_token_log_probs, best);

    // Caches follow the beams they continue.
    ++steps_issued_;
    cache_.reorder(running_beam_indices_.gather(2, index_at(position_, {b, k, 1})).reshape({-1}).to(at::kLong),
                   fixed_shapes_ ? -1 : steps_issued_);

    const at::Tensor best_length = at::where(best_length_is_max_, values_.max_length - 1, cur_len);
    const at::Tensor best_possible =
        running_scores_.narrow(1, 0, 1) / length_divisors_.index_select(0, best_length.view({1}));
    const at::Tensor worst_finished =
        at::where(is_sent_finished_, std::get<0>(at::min(beam_scores_, 1, true)), -kLarge);
    heuristic_unsatisfied_.logical_and_(at::any(best_possible > worst_finished, -1, true));

    at::Tensor keep_going = heuristic_unsatisfied_.any() & hits.all().logical_not();
    keep_going = keep_going & (is_sent_finished_.all() & early_true_).logical_not();
    active_.logical_and_(keep_going);
    position_.add_(1);
  }

  at::Tensor running() const override { return active_.clone(); }

  Generated result() const override {
    const at::Tensor best_sequences = sequences_.select(1, 0).to(at::kCPU);
    const at::Tensor best_indices = beam_indices_.select(1, 0).to(at::kCPU);
    const auto generated = (best_indices + 1).ne(0).sum(1).max().item<std::int64_t>();
    return {best_sequences.narrow(1, 0, 1 + generated).clone(),
            token_log_probs_.select(1, 0).narrow(1, 0, 1 + generated).to(at::kCPU).clone()};
  }

  at::Tensor prefixes(int cur_len) const override {
    return running_sequences_.narrow(2, 0, cur_len)
        .reshape({shape_.batch * shape_.beams, cur_len})
        .to(at::kCPU)
        .clone();
  }

 private:
  const BartDecoder& decoder_;
  GenerationConfig config_;
  LogitsProcessor processor_;
  at::Tensor eos_;
  std::int64_t keep_;
  KvCache cache_;
  at::Tensor top_beam_mask_;      // [keep] bool: the first `beams` candidates
  at::Tensor batch_offset_;       // [batch, 1] int64
  at::Tensor kept_beams_;         // [1, beams] int64: 0..beams-1, the finished beams' own places
  at::Tensor running_sequences_;  // [batch, beams, capacity] int64
  at::Tensor sequences_;
  at::Tensor running_scores_;  // [batch, beams] float32
  at::Tensor beam_scores_;
  at::Tensor is_sent_finished_;       // [batch, beams] bool
  at::Tensor heuristic_unsatisfied_;  // [batch, 1] bool
  at::Tensor running_beam_indices_;   // [batch, beams, capacity - 1] int32
  at::Tensor beam_indices_;
  at::Tensor running_token_log_probs_;  // [batch, beams, capacity] float32, aligned with the sequences
  at::Tensor token_log_probs_;
  at::Tensor position_;              // int64 scalar: the position the next step feeds (cur_len - 1)
  at::Tensor active_;                // bool scalar: the stopping rule has not fired
  ProcessorValues values_;           // the request's max_length and no_repeat_ngram_size
  at::Tensor early_true_;            // bool scalar: early_stopping is true
  at::Tensor best_length_is_max_;    // bool scalar: the heuristic assumes max_length ("never", length_penalty > 0)
  at::Tensor length_divisors_;       // [capacity + 1] float32: length ** length_penalty
  at::Tensor length_divisors_host_;  // their host copy, written when length_penalty changes
  std::optional<double> divisors_length_penalty_;  // the length_penalty length_divisors_ holds
  std::int64_t steps_issued_ = 0;                  // eager steps since reset(): the cache positions written
};

}  // namespace

GenerationValues generation_values(const GenerationConfig& config, int max_length) {
  return {max_length, config.length_penalty, config.early_stopping, config.no_repeat_ngram_size};
}

int ngram_window(int n) {
  constexpr int kSmallestWindow = 3;
  return n <= 0 ? 0 : std::max(n, kSmallestWindow);
}

GenerationConfig shape_settings(GenerationConfig config) {
  const GenerationConfig defaults;
  config.no_repeat_ngram_size = ngram_window(config.no_repeat_ngram_size);
  config.max_length.reset();
  config.max_new_tokens.reset();
  config.length_penalty = defaults.length_penalty;
  config.early_stopping = defaults.early_stopping;
  return config;
}

std::unique_ptr<Search> make_search(const BartDecoder& decoder, const GenerationConfig& config,
                                    const DecodeShape& shape, const at::TensorOptions& options) {
  if (shape.beams > 1) return std::make_unique<BeamSearch>(decoder, config, shape, options);
  return std::make_unique<GreedySearch>(decoder, config, shape, options);
}

}  // namespace vlm::florence2
