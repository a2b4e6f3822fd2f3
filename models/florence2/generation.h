#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <vector>

#include <ATen/ATen.h>

#include "bart.h"
#include "config.h"
#include "search.h"
#include "vlm/cuda_graph.h"

namespace vlm::florence2 {
// Beam search's running beams at every step. A near-tie decided differently shows in the final ids
// only steps later, if at all; parity tests use this to find the step where two implementations
// first chose differently.
struct BeamTrace {
  std::vector<at::Tensor> running;  // step s: the prefixes fed to the decoder, [B * num_beams, s + 1] int64
};

// One search (greedy or beams, search.h) for one shape and shape_settings(config), with its step
// captured as a CUDA graph on the first start() on a CUDA device and replayed from then on. A failed
// capture is logged once with its reason and the step runs eagerly; on the CPU it always does. Each
// start() takes the request's GenerationValues, so requests that differ only in those share it.
class DecodeState {
 public:
  // `capture_graph` false: the step runs eagerly on CUDA too (--cuda-graphs=false).
  DecodeState(const BartDecoder& decoder, const GenerationConfig& config, const DecodeShape& shape,
              const at::TensorOptions& options, bool capture_graph = true);
  // Starts a generation for `encoder_hidden` [batch, S, D] of this state's shape; throws
  // kInvalidArgument when values.max_length is below 2 or above the capacity.
  void start(const at::Tensor& encoder_hidden, const GenerationValues& values);
  // One step: a graph replay or the eager step.
  void step();
  // start(), then steps until the search ends: ids as generate() returns them, with their log-probs.
  Generated run(const at::Tensor& encoder_hidden, const GenerationValues& values, BeamTrace* trace = nullptr);
  bool graphed() const { return graph_.captured(); }
  // Steps with the shapes a captured graph has (whole-buffer cache moves), without capturing: how
  // tests run the graphed step's tensor code on the CPU.
  void use_fixed_shapes() { search_->set_fixed_shapes(true); }
  // shape_settings() of the config it was built with.
  const GenerationConfig& config() const { return config_; }
  const DecodeShape& shape() const { return search_->shape(); }

 private:
  GenerationConfig config_;
  std::unique_ptr<Search> search_;
  CudaGraph graph_;
  bool capture_graph_;
  bool capture_tried_ = false;
  int max_length_ = 0;  // of the generation start() began
};

// The capacity of the decode state that serves a request of `max_length` decoder tokens: 1 + a power
// of two of new tokens, at least 64, at most `ceiling` (the longest max_length the model allows), or
// `max_length` itself above that. Buckets let requests that ask for different max_new_tokens share a
// state and its captured graph, at the price of attention over at most twice the positions.
int length_bucket(int max_length, int ceiling);

// Generation for one model with transformers' semantics: the decoder starts from
// decoder_start_token_id; logits processors no_repeat_ngram_size, min_new_tokens, forced_bos_token_id
// and forced_eos_token_id in that order; stopping at an EOS token or `max_length` (decoder tokens,
// start token included); beam search is a port of transformers' vectorized `_beam_search`
// (length_penalty, early_stopping true/false/"never"), including its tie-breaking through topk.
// Decode states (KV caches, search buffers, on CUDA the captured step) are kept for the most recent
// shapes, since building and capturing one costs more than a request: one per batch, beams, encoder
// length, length_bucket() and shape_settings(); max_length, length_penalty and early_stopping are
// values the step reads (GenerationValues).
class Generator {
 public:
  // `max_length_ceiling`: the longest max_length a request can reach (the top length bucket);
  // `kept_states`: how many decode states stay built, the least recently used going first.
  // `capture_graphs`: DecodeState's capture_graph.
  Generator(const BartDecoder& decoder, int max_length_ceiling, std::size_t kept_states, bool capture_graphs);
  // `encoder_hidden` [B, S, D] holds one row per image. Returns int64 CPU ids [B, T], start token
  // first, shorter rows padded with pad_token_id exactly as transformers pads them, and each token's
  // log-probability (Generated).
  Generated generate(const at::Tensor& encoder_hidden, const GenerationConfig& config, int max_length,
                     BeamTrace* trace = nullptr);
  // Whether the last generate() replayed a captured CUDA graph.
  bool last_graphed() const;
  // Decode states built so far (each a KV cache allocation and, on CUDA, a graph capture).
  std::size_t states_created() const;

 private:
  const BartDecoder& decoder_;
  int max_length_ceiling_;
  std::size_t kept_states_;
  bool capture_graphs_;
  std::size_t states_created_ = 0;
  mutable std::mutex mutex_;                        // one generation at a time uses the kept states
  std::list<std::unique_ptr<DecodeState>> states_;  // most recently used first
  bool last_graphed_ = false;
};

// The logits processors alone, exposed for tests: `scores` [rows, vocab] float32 is updated for the
// decoder prefixes `ids` [rows, cur_len] int64 (LogitsProcessor, on the scores' device).
void process_logits(const at::Tensor& ids, at::Tensor& scores, const GenerationConfig& config, int max_length);

}  // namespace vlm::florence2
