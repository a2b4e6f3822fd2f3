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
    : ngram_window_(config.no_repeat_ngram_size),
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
// prefix bans its n-th token. Starts are checked over the whole buffer and masked by cur_len; the
// n - 1 compared tokens are the first of the window's, the others masked by n (a device value).
void LogitsProcessor::ban_repeated_ngrams(const at::Tensor& ids, const at::Tensor& cur_len, const at::Tensor& n,
                                          at::Tensor& scores) const {
  if (ngram_window_ <= 0) return;
  const auto rows = ids.size(0);
  const auto width = ids.size(1);
  const auto index_options = ids.options().dtype(at::kLong);
  const at::Tensor starts = at::arange(width, index_options);
  const at::Tensor offsets = at::arange(ngram_window_ - 1, index_options);
  const at::Tensor heads =  // [rows, width, window - 1]: the tokens from each start on
      ids.index_select(1, (starts.unsqueeze(1) + offsets).clamp_max(width - 1).flatten())
          .view({rows, width, ngram_window_ - 1});
  const at::Tensor prefix =
      ids.index_select(1, (cur_len - (n - 1) + offsets).clamp(0, width - 1));                  // [rows, window - 1]
  const at::Tensor banned_tokens = ids.index_select(1, (starts + n - 1).clamp(0, width - 1));  // [rows, width]
  const at::Tensor same = (heads == prefix.unsqueeze(1)) | (offsets >= n - 1);
  const at::Tensor match =
      same.all(2) & (starts + n <= cur_len) & (n > 0) & (banned_tokens >= 0) & (banned_tokens < vocab_);
  // A token may end several n-grams, matching or not: the minimum with -inf (banned) or +inf (kept)
  // gives the same answer in any order, so the scatter touches only the candidates, not the vocabulary.
  scores.scatter_reduce_(1, banned_tokens.clamp(0, vocab_ - 1), at::where(match, -kInf, kInf), "amin",
                         /*include_self=*/true);
}

void LogitsProcessor::apply(const at::Tensor& ids, const at::Tensor& cur_len, const ProcessorValues& values,
                            at::Tensor& scores) const {
  ban_repeated_ngrams(ids, cur_len, values.no_repeat_ngram_size, scores);
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
    const at::Tensor last = cur_len == values.max_length - 1;
    row = has_forced_bos_ ? at::where(last, forced_eos_, row) : forced_eos_;
    forced = has_forced_bos_ ? (forced | last) : last;
  }
  at::where_out(scores, forced, row, scores);
}

}  // namespace vlm::florence2
