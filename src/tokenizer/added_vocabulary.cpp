#include "added_vocabulary.h"

#include <algorithm>

#include "unicode_classes.h"
#include "utf8.h"

namespace vlm::tokenizer_detail {
namespace {

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Start of the code point that ends just before pos.
std::size_t previous_start(std::string_view text, std::size_t pos) {
  std::size_t p = pos - 1;
  while (p > 0 && is_continuation(text[p])) --p;
  return p;
}

char32_t code_point_at(std::string_view text, std::size_t pos) {
  char32_t cp = 0;
  if (!next_code_point(text, pos, cp)) cp = static_cast<unsigned char>(text[pos]);
  return cp;
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view content, int32_t id) {
  int32_t node = 0;
  for (char ch : content) {
    const auto byte = static_cast<unsigned char>(ch);
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | byte;
    auto it = children.find(key);
    if (it == children.end()) {
      const auto child = static_cast<int32_t>(terminal_id.size());
      terminal_id.push_back(-1);
      it = children.emplace(key, child).first;
    }
    node = it->second;
  }
  terminal_id[static_cast<std::size_t>(node)] = id;
  first_byte[static_cast<unsigned char>(content.front())] = true;
}

std::pair<std::size_t, int32_t> AddedVocabulary::Trie::longest_at(std::string_view text, std::size_t pos) const {
  std::pair<std::size_t, int32_t> best{0, -1};
  int32_t node = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    auto it = children.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]));
    if (it == children.end()) break;
    node = it->second;
    if (terminal_id[static_cast<std::size_t>(node)] >= 0)
      best = {i + 1 - pos, terminal_id[static_cast<std::size_t>(node)]};
  }
  return best;
}

void AddedVocabulary::add(const AddedToken& token, int32_t id) {
  if (token.content.empty()) return;
  auto old = content_to_id_.find(token.content);
  if (old != content_to_id_.end() && old->second != id) id_to_token_.erase(old->second);
  content_to_id_[token.content] = id;
  id_to_token_[id] = token;
  if (token.special && special_ids_.insert(id).second) special_order_.push_back(token.content);
}

void AddedVocabulary::rebuild() {
  non_normalized_ = Trie{};
  normalized_ = Trie{};
  for (const auto& [id, token] : id_to_token_)
    (token.normalized ? normalized_ : non_normalized_).insert(token.content, id);
}

std::optional<int32_t> AddedVocabulary::token_to_id(std::string_view content) const {
  auto it = content_to_id_.find(content);
  if (it == content_to_id_.end()) return std::nullopt;
  return it->second;
}

const AddedToken* AddedVocabulary::token_for_id(int32_t id) const {
  auto it = id_to_token_.find(id);
  return it == id_to_token_.end() ? nullptr : &it->second;
}

bool AddedVocabulary::is_special_id(int32_t id) const { return special_ids_.contains(id); }

std::optional<int32_t> AddedVocabulary::max_id() const {
  if (id_to_token_.empty()) return std::nullopt;
  return id_to_token_.rbegin()->first;
}

void AddedVocabulary::find_matches(std::string_view text, std::size_t base, const Trie& trie,
                                   std::vector<TextSplit>& out) const {
  std::size_t start_offset = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (!trie.first_byte[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    const auto [length, id] = trie.longest_at(text, pos);
    if (length == 0) {
      ++pos;
      continue;
    }
    std::size_t start = pos;
    std::size_t stop = pos + length;
    pos = stop;  // the matcher resumes after the raw match whatever happens to it
    const AddedToken& token = id_to_token_.at(id);
    if (token.single_word) {
      const bool space_before = start == 0 || !is_word_code_point(code_point_at(text, previous_start(text, start)));
      const bool space_after = stop == text.size() || !is_word_code_point(code_point_at(text, stop));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) {
      std::size_t new_start = start;
      while (new_start > 0) {
        const std::size_t prev = previous_start(text, new_start);
        if (!is_unicode_whitespace(code_point_at(text, prev))) break;
        new_start = prev;
      }
      start = std::max(new_start, start_offset);
    }
    if (token.rstrip) {
      std::size_t p = stop;
      char32_t cp = 0;
      while (p < text.size()) {
        std::size_t q = p;
        if (!next_code_point(text, q, cp) || !is_unicode_whitespace(cp)) break;
        p = q;
      }
      stop = p;
    }
    if (start > start_offset) out.push_back({base + start_offset, base + start, -1});
    out.push_back({base + start, base + stop, id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({base + start_offset, base + text.size(), -1});
}

void AddedVocabulary::split(std::string_view text, std::vector<TextSplit>& out) const {
  std::vector<TextSplit> first;
  find_matches(text, 0, non_normalized_, first);
  for (const TextSplit& s : first) {
    if (s.id >= 0) {
      out.push_back(s);
    } else {
      find_matches(text.substr(s.begin, s.end - s.begin), s.begin, normalized_, out);
    }
  }
}

}  // namespace vlm::tokenizer_detail
