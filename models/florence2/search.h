#pragma once

#include <compare>
#include <memory>

#include <ATen/ATen.h>

#include "bart.h"
#include "config.h"
#include "logits_processor.h"

namespace vlm::florence2 {

// The shape a decode state is built for: everything a step's tensor shapes depend on.
struct DecodeShape {
  std::int64_t batch = 0;
  std::int64_t beams = 1;
  std::int64_t encoder_length = 0;
  int capacity = 0;  // decoder positions its buffers hold: the longest max_length it can generate to
  auto operator<=>(const DecodeShape&) const = default;
};

// The generation settings that change a step's values but not its shapes. The step reads them from
// device scalars set by Search::reset(), so one state (and its captured graph) serves every request
// that differs only in them.
struct GenerationValues {
  int max_length = 0;  // decoder tokens to stop at, start token included; at most the capacity
  double length_penalty = 1.0;
  GenerationConfig::EarlyStopping early_stopping = GenerationConfig::EarlyStopping::kFalse;
  int no_repeat_ngram_size = 0;  // at most the state's n-gram window
};

GenerationValues generation_values(const GenerationConfig& config, int max_length);

// What a decode state is built for: `config` without the settings GenerationValues carries, its
// no_repeat_ngram_size replaced by the n-gram window (ngram_window) of the size asked.
GenerationConfig shape_settings(GenerationConfig config);

// The n-gram window that serves no_repeat_ngram_size `n`: 0 when off (no n-gram work in the step),
// else at least 3 (Florence-2's own), so that requests for 1, 2 or 3 share a state.
int ngram_window(int n);

// What a search returns: the ids as transformers' generate() returns them and, for each generated
// token, its log-probability under the scores the search chose it by (what transformers'
// compute_transition_scores gives): greedy, the log-softmax of the processed logits; beam search,
// the processed log-softmax under the beam that produced the token. Collected on the device at each
// step and carried with the beams, copied back once with the ids.
struct Generated {
  at::Tensor ids;              // [batch, T] int64 CPU, start token first, padded as transformers pads
  at::Tensor token_log_probs;  // [batch, T] float32 CPU, aligned with ids; 0 at the start token and padding
};

// Greedy or beam search as a fixed-shape state on the decoder's device: preallocated KV caches and
// search buffers, and a step (decoder, logits processing, token choice, cache reorder) that updates
// them in place and reads nothing back to the host. The host only asks, every few steps, whether
// generation still runs, and reads the ids once at the end.
class Search {
 public:
  virtual ~Search() = default;
  // Starts a generation for `encoder_hidden` [batch, S, D] (the shape this state was built for) with
  // `values` (max_length at least 2 and at most the capacity).
  virtual void reset(const at::Tensor& encoder_hidden, const GenerationValues& values) = 0;
  // One decoding step; capturable in a CUDA graph (same shapes, no host synchronisation) once
  // set_fixed_shapes(true) was called.
  virtual void step() = 0;
  // From now on every step has the same shapes (a graph replays it); before, a step run eagerly may
  // size its work by the steps the host issued (beam search moves only the cache positions written).
  void set_fixed_shapes(bool fixed) { fixed_shapes_ = fixed; }
  // Bool scalar tensor: false once every sequence is done (further steps change nothing).
  virtual at::Tensor running() const = 0;
  // The finished ids and their token log-probabilities.
  virtual Generated result() const = 0;
  // The prefixes the next step feeds the decoder, [batch * beams, cur_len] int64 CPU (BeamTrace).
  virtual at::Tensor prefixes(int cur_len) const = 0;
  const DecodeShape& shape() const { return shape_; }

 protected:
  explicit Search(const DecodeShape& shape) : shape_(shape) {}
  DecodeShape shape_;
  bool fixed_shapes_ = false;
};

// Greedy search (num_beams 1) or transformers' vectorized beam search, for `shape`. Of `config`, only
// shape_settings(config) is read; GenerationValues come with each reset().
std::unique_ptr<Search> make_search(const BartDecoder& decoder, const GenerationConfig& config,
                                    const DecodeShape& shape, const at::TensorOptions& options);

}  // namespace vlm::florence2
