#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "bart.h"
#include "config.h"
#include "search.h"

namespace vlm::florence2 {
// Beam search's running beams at every step. A near-tie decided differently shows in the final ids
// only steps later, if at all; parity tests use this to find the step where two implementations
// first chose differently.
struct BeamTrace {
  std::vector<at::Tensor> running;  // step s: the prefixes fed to the decoder, [B * num_beams, s + 1] int64
};

// Greedy search (num_beams 1) or beam search with transformers' semantics: the decoder starts from
// decoder_start_token_id; logits processors no_repeat_ngram_size, min_new_tokens, forced_bos_token_id
// and forced_eos_token_id in that order; stopping at an EOS token or `max_length` (decoder tokens,
// start token included); beam search is a port of transformers' vectorized `_beam_search`
// (length_penalty, early_stopping true/false/"never"), including its tie-breaking through topk.
// `encoder_hidden` [B, S, D] holds one row per image. Returns int64 CPU ids [B, T], start token
// first, shorter rows padded with pad_token_id exactly as transformers pads them.
at::Tensor generate(const BartDecoder& decoder, const at::Tensor& encoder_hidden, const GenerationConfig& config,
                    int max_length, BeamTrace* trace = nullptr);

// Runs `search` (built for encoder_hidden's shape) to the end: ids [B, T] int64 CPU as above.
at::Tensor run_search(Search& search, const at::Tensor& encoder_hidden, BeamTrace* trace = nullptr);

// The logits processors alone, exposed for tests: `scores` [rows, vocab] float32 CPU is updated for
// the decoder prefixes `ids` [rows, cur_len] int64 (LogitsProcessor, on the scores' device).
void process_logits(const at::Tensor& ids, at::Tensor& scores, const GenerationConfig& config, int max_length);

}  // namespace vlm::florence2
