#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bpe.h"
#include "vlm/tokenizer.h"

namespace vlm::tokenizer_detail {

// A span of the input: an added token (id >= 0) or plain text for the model (id == -1).
struct TextSplit {
  std::size_t begin;
  std::size_t end;
  int32_t id;
};

// tokenizers' AddedVocabulary: tokens matched in the raw text before any pre-tokenization.
class AddedVocabulary {
 public:
  // Adds or updates (same content: same id, new flags) one token under the given id. Call
  // rebuild() after a batch of adds and before the next split().
  void add(const AddedToken& token, int32_t id);
  void rebuild();

  // Non-normalized tokens are matched first over the whole text, normalized ones inside the
  // remaining spans; each pass takes the leftmost-longest match, as aho-corasick does there.
  void split(std::string_view text, std::vector<TextSplit>& out) const;

  std::optional<int32_t> token_to_id(std::string_view content) const;
  const AddedToken* token_for_id(int32_t id) const;
  bool is_special_id(int32_t id) const;
  std::optional<int32_t> max_id() const;
  const std::vector<std::string>& special_contents() const { return special_order_; }

 private:
  // Byte trie over token contents; children in one hash map keyed by (node << 8 | byte).
  struct Trie {
    std::vector<int32_t> terminal_id{-1};  // per node: token id ending here, or -1
    std::unordered_map<uint64_t, int32_t> children;
    std::array<bool, 256> first_byte{};

    void insert(std::string_view content, int32_t id);
    // Longest token starting at pos: (length, id), or length 0.
    std::pair<std::size_t, int32_t> longest_at(std::string_view text, std::size_t pos) const;
  };

  void find_matches(std::string_view text, std::size_t base, const Trie& trie, std::vector<TextSplit>& out) const;

  Vocab content_to_id_;
  std::map<int32_t, AddedToken> id_to_token_;
  std::unordered_set<int32_t> special_ids_;
  std::vector<std::string> special_order_;
  Trie non_normalized_;
  Trie normalized_;
};

}  // namespace vlm::tokenizer_detail
