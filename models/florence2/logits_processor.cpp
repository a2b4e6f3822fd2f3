#include "logits_processor.h"

#include <limits>

namespace vlm::florence2 {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

at::Tensor forced_row(std::int64_t vocab, int token, const at::TensorOptions& options) {
  at::Tensor row = at::full({vocab}, -kInf, options.dtype(at::kFloat));
  if (token >= 0 && token < vocab) row[token].fill_(0);
  return row;
}

}  // namespace

LogitsProcessor::LogitsProcessor(const GenerationConfig& config, int max_length, std::int64_t vocab,
                                 const at::TensorOptions& options)
    : ngram_size_(config.no_repeat_ngram_size),
      min_new_tokens_(config.min_new_tokens),
      max_length_(max_length),
      vocab_(vocab),
      eos_columns_(at::zeros({vocab}, options.dtype(at::kBool))) {
  for (const int eos : config.eos_token_ids) {
    if (eos >= 0 && eos < vocab) eos_columns_[eos].fill_(true);
  }
  if (config.forced_bos_token_id) forced_bos_ = forced_row(vocab, *config.forced_bos_token_id, options);
  if (config.forced_eos_token_id) forced_eos_ = forced_row(vocab, *config.forced_eos_token_id, options);
}

// Every n-gram start s with s + n <= cur_len whose first n - 1 tokens equal the last n - 1 of the
// prefix bans its n-th token. Starts are checked over the whole buffer and masked by cur_len.
void LogitsProcessor::ban_repeated_ngrams(const at::Tensor& ids, const at::Tensor& cur_len, at::Tensor& scores) const {
  const int n = ngram_size_;
  const auto width = ids.size(1);
  if (n <= 0 || width < n) return;
  const auto index_options = ids.options().dtype(at::kLong);
  const at::Tensor windows = ids.unfold(1, n, 1);  // [rows, width - n + 1, n]
  const at::Tensor starts = at::arange(width - n + 1, index_options);
  const at::Tensor prefix_positions = (cur_len - (n - 1) + at::arange(n - 1, index_options)).clamp(0, width - 1);
  const at::Tensor prefix = ids.index_select(1, prefix_positions);  // [rows, n - 1]
  const at::Tensor banned_tokens = windows.select(2, n - 1);
  const at::Tensor match = (windows.narrow(2, 0, n - 1) == prefix.unsqueeze(1)).all(2) & (starts + n <= cur_len) &
                           (banned_tokens >= 0) & (banned_tokens < vocab_);
  at::Tensor counts = at::zeros(scores.sizes(), scores.options().dtype(at::kInt));
  counts.scatter_add_(1, banned_tokens.clamp(0, vocab_ - 1), match.to(at::kInt));
  scores.masked_fill_(counts > 0, -kInf);
}

void LogitsProcessor::apply(const at::Tensor& ids, const at::Tensor& cur_len, at::Tensor& scores) const {
  ban_repeated_ngrams(ids, cur_len, scores);
  // MinNewTokensLengthLogitsProcessor; the decoder prompt is the start token alone.
  if (min_new_tokens_ > 0) scores.masked_fill_(eos_columns_ & (cur_len - 1 < min_new_tokens_), -kInf);
  if (forced_bos_.defined()) scores.copy_(at::where(cur_len == 1, forced_bos_, scores));
  if (forced_eos_.defined()) scores.copy_(at::where(cur_len == max_length_ - 1, forced_eos_, scores));
}

}  // namespace vlm::florence2
