#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vlm::tokenizer_detail {

// Lets unordered_map<std::string, ...> be searched with a string_view without a copy.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeOptions {
  std::optional<std::string> unk_token;
  bool fuse_unk = false;
  bool ignore_merges = false;  // a word found whole in the vocabulary is not split
};

// The BPE model of `tokenizers` over byte-level words: merges applied by rank with a heap over a
// linked list of symbols (n log n per word, like tokenizers' Word::merge_all), words cached.
class BpeModel {
 public:
  // merges: pairs of vocabulary tokens in rank order; each pair's concatenation must be a token.
  BpeModel(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options);

  // Appends the ids of one pre-tokenized word, given as raw bytes.
  void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;
  std::size_t size() const { return vocab_.size(); }

 private:
  std::vector<int32_t> merge_word(std::string_view bytes) const;

  Vocab vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  std::array<int32_t, 256> byte_ids_{};  // -1 where the byte's character is not in the vocabulary
  std::optional<int32_t> unk_id_;
  BpeOptions options_;

  static constexpr int32_t kMaxId = 1 << 24;
  static constexpr std::size_t kCacheCapacity = 10000;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace vlm::tokenizer_detail
