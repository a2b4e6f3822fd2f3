#include "generation.h"

#include <cmath>
#include <limits>
#include <vector>

#include "vlm/error.h"

namespace vlm::florence2 {
namespace {

using EarlyStopping = GenerationConfig::EarlyStopping;
constexpr double kLarge = 1.0e9;  // transformers' "very large negative" for excluded beams

void force_token(at::Tensor& scores, int token) {
  scores = at::full_like(scores, -std::numeric_limits<float>::infinity());
  scores.select(1, token).fill_(0);
}

at::Tensor gather_beams(const at::Tensor& tensor, at::Tensor indices) {
  while (indices.dim() < tensor.dim()) indices = indices.unsqueeze(-1);
  return at::take_along_dim(tensor, indices, 1);
}

at::Tensor eos_tensor(const GenerationConfig& config) {
  return at::tensor(std::vector<std::int64_t>(config.eos_token_ids.begin(), config.eos_token_ids.end()), at::kLong);
}

at::Tensor greedy(const BartDecoder& decoder, const at::Tensor& encoder_hidden, const GenerationConfig& config,
                  int max_length) {
  const auto batch = encoder_hidden.size(0);
  const auto device = encoder_hidden.device();
  at::Tensor ids = at::full({batch, max_length}, config.pad_token_id, at::kLong);
  ids.select(1, 0).fill_(config.decoder_start_token_id);
  const at::Tensor eos = eos_tensor(config);
  const bool has_eos = !config.eos_token_ids.empty();
  at::Tensor unfinished = at::ones({batch}, at::kBool);
  KvCache cache = decoder.start(encoder_hidden, 1, max_length);
  at::Tensor input = ids.narrow(1, 0, 1).to(device);
  int cur_len = 1;
  while (cur_len < max_length) {
    at::Tensor scores = decoder.forward(input, cache).select(1, -1).to(at::kCPU, at::kFloat);
    process_logits(ids.narrow(1, 0, cur_len), scores, config, max_length);
    at::Tensor next = scores.argmax(-1);
    if (has_eos) next = at::where(unfinished, next, at::full_like(next, config.pad_token_id));
    ids.select(1, cur_len).copy_(next);
    ++cur_len;
    const bool at_max = cur_len >= max_length;
    at::Tensor done = has_eos ? at::isin(next, eos) : at::zeros_like(unfinished);
    if (at_max) done.fill_(true);
    unfinished = unfinished & ~done;
    if (!unfinished.any().item<bool>()) break;
    input = next.view({batch, 1}).to(device);
  }
  return ids.narrow(1, 0, cur_len).clone();
}

at::Tensor beam_search(const BartDecoder& decoder, const at::Tensor& encoder_hidden, const GenerationConfig& config,
                       int max_length, BeamTrace* trace) {
  const auto batch = encoder_hidden.size(0);
  const std::int64_t beams = config.num_beams;
  const auto device = encoder_hidden.device();
  const double length_penalty = config.length_penalty;
  const auto early = config.early_stopping;
  const at::Tensor eos = eos_tensor(config);
  const std::int64_t n_eos = static_cast<std::int64_t>(config.eos_token_ids.size());
  const std::int64_t keep = std::max<std::int64_t>(2, 1 + n_eos) * beams;
  const at::Tensor top_beam_mask = at::cat({at::ones({beams}, at::kBool), at::zeros({keep - beams}, at::kBool)});
  const std::int64_t fill =
      config.pad_token_id != 0 ? config.pad_token_id : (config.eos_token_ids.empty() ? -1 : config.eos_token_ids[0]);
  const int prompt_len = 1;
  int cur_len = 1;

  at::Tensor running_sequences = at::full({batch, beams, max_length}, fill, at::kLong);
  running_sequences.select(2, 0).fill_(config.decoder_start_token_id);
  at::Tensor sequences = running_sequences.clone();
  at::Tensor running_scores = at::zeros({batch, beams}, at::kFloat);
  running_scores.narrow(1, 1, beams - 1).fill_(-kLarge);
  at::Tensor beam_scores = at::full({batch, beams}, -kLarge, at::kFloat);
  at::Tensor is_sent_finished = at::zeros({batch, beams}, at::kBool);
  at::Tensor heuristic_unsatisfied = at::ones({batch, 1}, at::kBool);
  at::Tensor running_beam_indices = at::full({batch, beams, max_length - cur_len}, -1, at::kInt);
  at::Tensor beam_indices = running_beam_indices.clone();

  KvCache cache = decoder.start(encoder_hidden, beams, max_length);
  const at::Tensor batch_offset = at::arange(batch, at::kLong).view({-1, 1}) * beams;
  while (true) {
    const at::Tensor flat_running = running_sequences.narrow(2, 0, cur_len).reshape({batch * beams, cur_len});
    if (trace != nullptr) trace->running.push_back(flat_running.clone());
    const at::Tensor input = flat_running.narrow(1, cur_len - 1, 1).to(device);
    const at::Tensor logits = decoder.forward(input, cache).select(1, -1).to(at::kCPU, at::kFloat);
    at::Tensor log_probs = at::log_softmax(logits, -1);
    process_logits(flat_running, log_probs, config, max_length);
    const auto vocab = log_probs.size(-1);
    log_probs = (log_probs.view({batch, beams, vocab}) + running_scores.unsqueeze(-1)).reshape({batch, -1});

    // Top-K continuations over all beams.
    auto [topk_log_probs, topk_indices] = at::topk(log_probs, keep);
    const at::Tensor topk_beam = topk_indices.div(vocab, "floor");
    at::Tensor topk_running_beam_indices = gather_beams(running_beam_indices, topk_beam);
    at::Tensor topk_running_sequences = gather_beams(running_sequences, topk_beam);
    const at::Tensor topk_ids = topk_indices.remainder(vocab);
    topk_running_sequences.select(2, cur_len).copy_(topk_ids);
    topk_running_beam_indices.select(2, cur_len - prompt_len).copy_(topk_beam + batch_offset);

    // Stopping criteria: max length for all, EOS per candidate.
    at::Tensor hits = n_eos > 0 ? at::isin(topk_ids, eos) : at::zeros_like(topk_ids, at::kBool);
    if (cur_len + 1 >= max_length) hits.fill_(true);

    // Running beams for the next step: the best unfinished candidates.
    const at::Tensor topk_running_log_probs = topk_log_probs + hits.to(at::kFloat) * -kLarge;
    const at::Tensor next_topk = std::get<1>(at::topk(topk_running_log_probs, beams));
    running_sequences = gather_beams(topk_running_sequences, next_topk);
    running_scores = gather_beams(topk_running_log_probs, next_topk);
    running_beam_indices = gather_beams(topk_running_beam_indices, next_topk);

    // Finished beams: merge candidates that just ended among the top `beams` with the kept ones.
    const at::Tensor just_finished = hits & top_beam_mask.unsqueeze(0);
    at::Tensor finished_scores =
        topk_log_probs / std::pow(static_cast<double>(cur_len + 1 - prompt_len), length_penalty);
    const at::Tensor batch_full = at::all(is_sent_finished, -1, true) & (early == EarlyStopping::kTrue);
    finished_scores += batch_full.to(at::kFloat) * -kLarge;
    finished_scores += (~heuristic_unsatisfied).to(at::kFloat) * -kLarge;
    finished_scores += (~just_finished) * -kLarge;
    const at::Tensor merged_sequences = at::cat({sequences, topk_running_sequences}, 1);
    const at::Tensor merged_scores = at::cat({beam_scores, finished_scores}, 1);
    const at::Tensor merged_indices = at::cat({beam_indices, topk_running_beam_indices}, 1);
    const at::Tensor merged_finished = at::cat({is_sent_finished, just_finished}, 1);
    const at::Tensor best = std::get<1>(at::topk(merged_scores, beams));
    sequences = gather_beams(merged_sequences, best);
    beam_scores = gather_beams(merged_scores, best);
    beam_indices = gather_beams(merged_indices, best);
    is_sent_finished = gather_beams(merged_finished, best);

    // Caches follow the beams they continue.
    const at::Tensor rows = running_beam_indices.select(2, cur_len - prompt_len).reshape({-1}).to(at::kLong);
    cache.reorder(rows.to(device));

    ++cur_len;
    const int best_length =
        (early == EarlyStopping::kNever && length_penalty > 0.0) ? max_length - prompt_len : cur_len - prompt_len;
    const at::Tensor best_possible =
        running_scores.narrow(1, 0, 1) / std::pow(static_cast<double>(best_length), length_penalty);
    const at::Tensor worst_finished =
        at::where(is_sent_finished, std::get<0>(at::min(beam_scores, 1, true)), at::full({}, -kLarge, at::kFloat));
    heuristic_unsatisfied = heuristic_unsatisfied & at::any(best_possible > worst_finished, -1, true);

    const bool improvement_possible = heuristic_unsatisfied.any().item<bool>();
    const bool open_beam = !(is_sent_finished.all().item<bool>() && early == EarlyStopping::kTrue);
    const bool valid_continuations = !hits.all().item<bool>();
    if (!(improvement_possible && open_beam && valid_continuations)) break;
  }
  const at::Tensor best_sequences = sequences.select(1, 0);
  const at::Tensor best_indices = beam_indices.select(1, 0);
  const auto generated = (best_indices + 1).ne(0).sum(1).max().item<std::int64_t>();
  return best_sequences.narrow(1, 0, prompt_len + generated).clone();
}

}  // namespace

void process_logits(const at::Tensor& ids, at::Tensor& scores, const GenerationConfig& config, int max_length) {
  const auto cur_len = ids.size(1);
  const int n = config.no_repeat_ngram_size;
  if (n > 0 && cur_len >= n) {
    const auto rows = ids.size(0);
    const at::Tensor contiguous = ids.contiguous();
    const auto* data = contiguous.data_ptr<std::int64_t>();
    at::Tensor banned = at::zeros_like(scores, at::kBool);
    const auto vocab = scores.size(1);
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t* row = data + r * cur_len;
      const std::int64_t* prefix = row + cur_len + 1 - n;
      for (std::int64_t start = 0; start + n <= cur_len; ++start) {
        if (std::equal(prefix, prefix + n - 1, row + start)) {
          const auto token = row[start + n - 1];
          if (token >= 0 && token < vocab) banned[r][token] = true;
        }
      }
    }
    scores = scores.masked_fill(banned, -std::numeric_limits<float>::infinity());
  }
  // transformers' MinNewTokensLengthLogitsProcessor; the decoder prompt is the start token alone.
  if (cur_len - 1 < config.min_new_tokens) {
    for (const int eos : config.eos_token_ids) {
      if (eos >= 0 && eos < scores.size(1)) scores.select(1, eos).fill_(-std::numeric_limits<float>::infinity());
    }
  }
  if (config.forced_bos_token_id && cur_len == 1) force_token(scores, *config.forced_bos_token_id);
  if (config.forced_eos_token_id && cur_len == max_length - 1) force_token(scores, *config.forced_eos_token_id);
}

at::Tensor generate(const BartDecoder& decoder, const at::Tensor& encoder_hidden, const GenerationConfig& config,
                    int max_length, BeamTrace* trace) {
  if (max_length < 2) {
    throw Error(ErrorCode::kInvalidArgument, "max_length " + std::to_string(max_length) +
                                                 " leaves no room to generate after the decoder start token");
  }
  return config.num_beams > 1 ? beam_search(decoder, encoder_hidden, config, max_length, trace)
                              : greedy(decoder, encoder_hidden, config, max_length);
}

}  // namespace vlm::florence2
