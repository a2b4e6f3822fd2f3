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
  std::vector<TextRange> ranges(tokens.size());
  std::size_t pos = 0;
  // Ordinary tokens decode together (a character's bytes may span several), so a run of them is
  // measured by decoding its prefixes; added tokens decode to their own text.
  std::size_t run_start = 0;
  std::size_t run_base = 0;
  bool in_run = false;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::int32_t id = tokens[i];
    if (is_removed(id)) {
      ranges[i] = {pos, pos};
      in_run = false;
      continue;
    }
    if (tokenizer_.is_special(id)) {
      const std::size_t length = tokenizer_.decode(tokens.subspan(i, 1)).size();
      ranges[i] = {pos, pos + length};
      pos += length;
      in_run = false;
      continue;
    }
    if (!in_run) {
      in_run = true;
      run_start = i;
      run_base = pos;
    }
    const std::size_t end = run_base + tokenizer_.decode(tokens.subspan(run_start, i + 1 - run_start)).size();
    ranges[i] = {pos, std::max(pos, end)};
    pos = ranges[i].end;
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
  auto overlaps = [](const TextRange& a, const TextRange& b) { return a.begin < b.end && b.begin < a.end; };
  for (const RegionSource& region : regions) {
    double sum = 0.0;
    std::size_t count = 0;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const TextRange& token = ranges[i];
      bool used = overlaps(token, region.label);
      for (const TextRange& location : region.locations) used = used || overlaps(token, location);
      if (!used) continue;
      sum += log_probs[i];
      ++count;
    }
    scores.push_back(count == 0 ? 0.0F : static_cast<float>(std::exp(sum / static_cast<double>(count))));
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
