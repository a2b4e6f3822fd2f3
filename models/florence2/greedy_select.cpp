#include "greedy_select.h"

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "vlm/error.h"

namespace vlm::florence2 {
namespace {

// A forced token outside the vocabulary forces a row of -inf, as transformers' processor does; the
// kernel takes it as the index `vocab`.
int forced_token(const std::optional<int>& token, std::int64_t vocab) {
  if (!token) return -1;
  return *token >= 0 && *token < vocab ? *token : static_cast<int>(vocab);
}

}  // namespace

at::Tensor index_at(const at::Tensor& position, at::IntArrayRef shape) {
  std::vector<std::int64_t> ones(shape.size(), 1);
  return position.view(ones).expand(shape);
}

at::Tensor eos_tensor(const GenerationConfig& config, const at::TensorOptions& options) {
  return at::tensor(std::vector<std::int64_t>(config.eos_token_ids.begin(), config.eos_token_ids.end()), at::kLong)
      .to(options.device());
}

GreedySelector::GreedySelector(const GenerationConfig& config, std::int64_t vocab, std::int64_t rows,
                               const at::TensorOptions& options)
    : config_(config),
      vocab_(vocab),
      rows_(rows),
      processor_(config, vocab, options),
      eos_(eos_tensor(config, options)) {
  if (rows < 0) throw Error(ErrorCode::kInternal, "GreedySelector built for " + std::to_string(rows) + " rows");
#ifdef VLM_WITH_CUDA
  fused_ = options.device().is_cuda() && config.eos_token_ids.size() <= kGreedyKernelMaxEos && vocab > 0 &&
           vocab <= std::numeric_limits<int>::max();
#endif
  if (!fused_) return;
#ifdef VLM_WITH_CUDA
  constants_.split = greedy_select_split(rows, vocab, options.device().index());
#endif
  workspace_ = at::zeros({greedy_workspace_words(rows, constants_.split)}, options.dtype(at::kInt));
  constants_.vocab = vocab;
  constants_.ngram_window = config.no_repeat_ngram_size;
  constants_.min_new_tokens = config.min_new_tokens;
  constants_.forced_bos = forced_token(config.forced_bos_token_id, vocab);
  constants_.forced_eos = forced_token(config.forced_eos_token_id, vocab);
  for (const int id : config.eos_token_ids) constants_.eos[constants_.eos_count++] = id;
  constants_.pad = config.pad_token_id;
}

void GreedySelector::select(const at::Tensor& logits, GreedyState& state) const {
#ifdef VLM_WITH_CUDA
  const auto dtype = logits.scalar_type();
  if (fused_ && logits.is_cuda() && logits.dim() == 2 && logits.size(1) == vocab_ && logits.stride(1) == 1 &&
      (dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16)) {
    if (logits.size(0) > rows_) {
      throw Error(ErrorCode::kInternal, "GreedySelector built for at most " + std::to_string(rows_) +
                                            " rows, given logits " + c10::str(logits.sizes()));
    }
    GreedyKernelParams params = constants_;
    params.batch = logits.size(0);
    params.logits_stride = logits.stride(0);
    params.ids = state.ids.mutable_data_ptr<std::int64_t>();
    params.ids_stride = state.ids.stride(0);
    params.token_log_probs = state.token_log_probs.mutable_data_ptr<float>();
    params.log_probs_stride = state.token_log_probs.stride(0);
    params.unfinished = state.unfinished.mutable_data_ptr<bool>();
    params.position = state.position.mutable_data_ptr<std::int64_t>();
    params.length = state.length.mutable_data_ptr<std::int64_t>();
    params.max_length = state.values.max_length.const_data_ptr<std::int64_t>();
    params.ngram_size = state.values.no_repeat_ngram_size.const_data_ptr<std::int64_t>();
    point_greedy_workspace(params, workspace_.mutable_data_ptr<std::int32_t>(), rows_);
    greedy_select_cuda(logits, params);
    return;
  }
#endif
  select_with_ops(logits, state);
}

void GreedySelector::select_with_ops(const at::Tensor& logits, GreedyState& state) const {
  const auto batch = logits.size(0);
  const at::Tensor cur_len = state.position + 1;
  at::Tensor scores = logits.to(at::kFloat);
  processor_.apply(state.ids, cur_len, state.values, scores);
  at::Tensor next = scores.argmax(-1);
  // log_softmax(scores)[next] without materialising the vocabulary-wide log-softmax.
  const at::Tensor chosen = scores.gather(1, next.unsqueeze(1)) - at::logsumexp(scores, {1}, true);
  state.token_log_probs.scatter_(1, index_at(cur_len, {batch, 1}),
                                 at::where(state.unfinished.unsqueeze(1), chosen, 0.0F));
  const bool has_eos = !config_.eos_token_ids.empty();
  if (has_eos) next = at::where(state.unfinished, next, config_.pad_token_id);
  state.ids.scatter_(1, index_at(cur_len, {batch, 1}), next.unsqueeze(1));
  // The returned length grows while any row was still running when the step began.
  state.length.copy_(at::where(state.unfinished.any(), cur_len + 1, state.length));
  at::Tensor done = has_eos ? (next.unsqueeze(1) == eos_).any(1) : at::zeros_like(state.unfinished);
  done = done | (cur_len + 1 >= state.values.max_length);
  state.unfinished.logical_and_(done.logical_not());
  state.position.add_(1);
}

}  // namespace vlm::florence2
