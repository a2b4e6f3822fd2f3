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

LogitsProcessor::LogitsProcessor(const GenerationConfig& config, std::int64_t vocab, const at::TensorOptions& options)
    : ngram_size_(config.no_repeat_ngram_size),
      min_new_tokens_(config.min_new_tokens),
      vocab_(vocab),
      has_forced_bos_(config.forced_bos_token_id.has_value()),
      has_forced_eos_(config.forced_eos_token_id.has_value()) {
  std::vector<std::int64_t> eos;
  for (const int id : config.eos_token_ids) {
    if (id >= 0 && id < vocab) eos.push_back(id);
  }
  eos_ids_ = at::tensor(eos, at::kLong).to(options.device()).unsqueeze(0);
  if (has_forced_bos_) forced_bos_ = forced_row(vocab, *config.forced_bos_token_id, options);
  if (has_forced_eos_) forced_eos_ = forced_row(vocab, *config.forced_eos_token_id, options);
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
  // A token may end several n-grams, matching or not: the minimum with -inf (banned) or +inf (kept)
  // gives the same answer in any order, so the scatter touches only the candidates, not the vocabulary.
  scores.scatter_reduce_(1, banned_tokens.clamp(0, vocab_ - 1), at::where(match, -kInf, kInf), "amin",
                         /*include_self=*/true);
}

void LogitsProcessor::apply(const at::Tensor& ids, const at::Tensor& cur_len, const at::Tensor& max_length,
                            at::Tensor& scores) const {
  ban_repeated_ngrams(ids, cur_len, scores);
  const auto rows = scores.size(0);
  // MinNewTokensLengthLogitsProcessor; the decoder prompt is the start token alone.
  if (min_new_tokens_ > 0 && eos_ids_.numel() > 0) {
    const at::Tensor ban = at::where(cur_len - 1 < min_new_tokens_, -kInf, kInf).to(at::kFloat);
    const at::Tensor columns = eos_ids_.expand({rows, eos_ids_.size(1)});
    scores.scatter_reduce_(1, columns, ban.expand(columns.sizes()), "amin", /*include_self=*/true);
  }
  // Forced EOS comes after forced BOS in transformers' list, so it wins where both apply.
  if (!has_forced_bos_ && !has_forced_eos_) return;
  at::Tensor forced;
  at::Tensor row;
  if (has_forced_bos_) {
    forced = cur_len == 1;
    row = forced_bos_;
  }
  if (has_forced_eos_) {
    const at::Tensor last = cur_len == max_length - 1;
    row = has_forced_bos_ ? at::where(last, forced_eos_, row) : forced_eos_;
    forced = has_forced_bos_ ? (forced | last) : last;
  }
  at::where_out(scores, forced, row, scores);
}

}  // namespace vlm::florence2
