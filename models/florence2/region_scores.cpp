#include "region_scores.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "python_str.h"

namespace vlm::florence2 {

RegionScorer::RegionScorer(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {
  for (const char* token : {"<s>", "</s>", "<pad>"}) {
    if (const auto id = tokenizer.token_to_id(token)) removed_.push_back(*id);
  }
}

bool RegionScorer::is_removed(std::int32_t id) const {
  return std::find(removed_.begin(), removed_.end(), id) != removed_.end();
}

std::vector<TextRange> RegionScorer::token_ranges(std::span<const std::int32_t> tokens) const {
  // The whole answer decoded once, prefix by prefix: a character whose bytes span several tokens
  // is placed where its last byte arrives. <s>, </s> and <pad> decode to their own text, which the
  // parsed text does not have, so their bytes are taken out of every later position.
  const std::vector<std::size_t> sizes = tokenizer_.decoded_prefix_sizes(tokens);
  std::vector<TextRange> ranges(tokens.size());
  std::size_t pos = 0;
  std::size_t removed_bytes = 0;
  std::size_t previous = 0;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (is_removed(tokens[i])) {
      removed_bytes += sizes[i] - previous;
      ranges[i] = {pos, pos};
    } else {
      ranges[i] = {pos, std::max(pos, sizes[i] - removed_bytes)};
      pos = ranges[i].end;
    }
    previous = sizes[i];
  }
  return ranges;
}

std::optional<std::vector<float>> RegionScorer::score(std::span<const std::int32_t> tokens,
                                                      std::span<const float> log_probs, std::string_view decoded,
                                                      const std::vector<RegionSource>& regions) const {
  std::vector<float> scores;
  if (regions.empty()) return scores;
  const std::vector<TextRange> ranges = token_ranges(tokens);
  const std::string parsed = replace_all(replace_all(replace_all(decoded, "<s>", ""), "</s>", ""), "<pad>", "");
  if (ranges.empty() || ranges.back().end != parsed.size() || log_probs.size() < tokens.size()) return std::nullopt;
  // Token ranges are in text order (begins and ends never decrease), so the tokens a piece of text
  // overlaps start at the first one ending after its begin.
  std::vector<std::size_t> used;
  const auto add_overlapping = [&](const TextRange& text) {
    auto it = std::partition_point(ranges.begin(), ranges.end(),
                                   [&](const TextRange& token) { return token.end <= text.begin; });
    for (; it != ranges.end() && it->begin < text.end; ++it) {
      if (text.begin < it->end) used.push_back(static_cast<std::size_t>(it - ranges.begin()));
    }
  };
  for (const RegionSource& region : regions) {
    used.clear();
    add_overlapping(region.label);
    for (const TextRange& location : region.locations) add_overlapping(location);
    std::sort(used.begin(), used.end());
    used.erase(std::unique(used.begin(), used.end()), used.end());
    double sum = 0.0;
    for (std::size_t i : used) sum += log_probs[i];
    scores.push_back(used.empty() ? 0.0F : static_cast<float>(std::exp(sum / static_cast<double>(used.size()))));
  }
  return scores;
}

void assign_region_scores(std::span<const float> scores, ParsedAnswer& parsed) {
  std::size_t next = 0;
  const auto take = [&](float& score) {
    if (next < scores.size()) score = scores[next++];
  };
  for (Detection& box : parsed.boxes) take(box.score);
  for (PolygonRegion& region : parsed.answer.polygon_regions) take(region.score);
  for (QuadRegion& region : parsed.answer.quad_regions) take(region.score);
  parsed.answer.scored = parsed.answer.shape != AnswerShape::kText;
}

void drop_regions_below(float conf, ParsedAnswer& parsed) {
  const auto below = [conf](const auto& region) { return !(region.score > conf); };
  std::erase_if(parsed.boxes, below);
  std::erase_if(parsed.answer.polygon_regions, below);
  std::erase_if(parsed.answer.quad_regions, below);
}

}  // namespace vlm::florence2
