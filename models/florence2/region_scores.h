#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "post_processor.h"
#include "vlm/tokenizer.h"

namespace vlm::florence2 {

// A region's score: the geometric mean of the probabilities of the tokens it was parsed from (its
// label's tokens and its <loc_*> tokens; not <poly>, </poly>, <sep> or the sequence tokens), each
// probability the one the search chose the token by (Generated::token_log_probs), i.e.
// exp(mean log p). A label token is one whose decoded text overlaps the label's text, so a token
// that carries the space before a word counts with the word.
class RegionScorer {
 public:
  // Resolves the sequence tokens' ids once; `tokenizer` must outlive the scorer.
  explicit RegionScorer(const Tokenizer& tokenizer);

  // One score per region of `regions` (parse_generation of `tokens` decoded), in their order.
  // nullopt when the decoded tokens do not line up with the parsed text, which happens only when
  // ordinary tokens spell out "<s>", "</s>" or "<pad>"; the answer then carries no scores.
  std::optional<std::vector<float>> score(std::span<const std::int32_t> tokens, std::span<const float> log_probs,
                                          std::string_view decoded, const std::vector<RegionSource>& regions) const;

 private:
  // Each token's byte range in the decoded text with <s>, </s> and <pad> removed.
  std::vector<TextRange> token_ranges(std::span<const std::int32_t> tokens) const;
  bool is_removed(std::int32_t id) const;

  const Tokenizer& tokenizer_;
  std::vector<std::int32_t> removed_;  // ids of <s>, </s> and <pad>
};

// Gives each region of `parsed` its score, `scores` being RegionScorer::score of its sources.
void assign_region_scores(std::span<const float> scores, ParsedAnswer& parsed);

// Drops the regions (boxes, polygon and quad regions) scoring at or below `conf`.
void drop_regions_below(float conf, ParsedAnswer& parsed);

}  // namespace vlm::florence2
