#include "bpe.h"

#include <queue>

#include "byte_level.h"
#include "vlm/error.h"

namespace vlm::tokenizer_detail {
namespace {

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Symbol {
  int32_t id;
  int prev;
  int next;
  bool removed;
};

// Lowest rank first, then leftmost, as tokenizers' Merge ordering.
struct MergeEntry {
  int32_t rank;
  int pos;
  int32_t new_id;
  bool operator<(const MergeEntry& other) const { return rank != other.rank ? rank > other.rank : pos > other.pos; }
};

}  // namespace

BpeModel::BpeModel(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  std::size_t id_count = 0;
  for (const auto& [token, id] : vocab_) {
    // Ids index a table, so a stray huge id must not turn into a huge allocation.
    if (id < 0 || id >= kMaxId) {
      throw Error(ErrorCode::kBadCheckpoint,
                  "vocabulary token '" + token + "' has id " + std::to_string(id) + ", outside [0, 2^24)");
    }
    id_count = std::max(id_count, static_cast<std::size_t>(id) + 1);
  }
  id_to_token_.resize(id_count);
  has_id_.assign(id_count, false);
  for (const auto& [token, id] : vocab_) {
    id_to_token_[static_cast<std::size_t>(id)] = token;
    has_id_[static_cast<std::size_t>(id)] = true;
  }
  merges_.reserve(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    auto a = vocab_.find(left);
    auto b = vocab_.find(right);
    std::string joined = left;
    joined += right;
    auto merged = vocab_.find(joined);
    if (a == vocab_.end() || b == vocab_.end() || merged == vocab_.end()) {
      std::string message = "merge " + std::to_string(rank) + " '";
      message.append(left).append(" ").append(right).append("' uses or produces a token missing from the vocabulary");
      throw Error(ErrorCode::kBadCheckpoint, message);
    }
    // Later duplicates do not override the first (best-ranked) occurrence.
    merges_.try_emplace(pair_key(a->second, b->second), static_cast<int32_t>(rank), merged->second);
  }
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(byte_to_chars(static_cast<unsigned char>(b)));
    byte_ids_[static_cast<std::size_t>(b)] = it == vocab_.end() ? -1 : it->second;
  }
  if (options_.unk_token) {
    auto it = vocab_.find(*options_.unk_token);
    if (it == vocab_.end()) {
      throw Error(ErrorCode::kBadCheckpoint, "unk_token '" + *options_.unk_token + "' is not in the vocabulary");
    }
    unk_id_ = it->second;
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size() || !has_id_[static_cast<std::size_t>(id)]) {
    return nullptr;
  }
  return &id_to_token_[static_cast<std::size_t>(id)];
}

void BpeModel::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
  {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(bytes);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = merge_word(bytes);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() < kCacheCapacity) cache_.try_emplace(std::string(bytes), std::move(ids));
}

std::vector<int32_t> BpeModel::merge_word(std::string_view bytes) const {
  if (options_.ignore_merges) {
    auto it = vocab_.find(bytes_to_token_chars(bytes));
    if (it != vocab_.end()) return {it->second};
  }
  std::vector<Symbol> symbols;
  symbols.reserve(bytes.size());
  bool last_was_unk = false;
  for (char c : bytes) {
    const int32_t id = byte_ids_[static_cast<unsigned char>(c)];
    if (id >= 0) {
      symbols.push_back({id, 0, 0, false});
      last_was_unk = false;
    } else if (unk_id_) {
      if (!(options_.fuse_unk && last_was_unk)) symbols.push_back({*unk_id_, 0, 0, false});
      last_was_unk = true;
    }
  }
  const int n = static_cast<int>(symbols.size());
  for (int i = 0; i < n; ++i) {
    symbols[static_cast<std::size_t>(i)].prev = i - 1;
    symbols[static_cast<std::size_t>(i)].next = i + 1 < n ? i + 1 : -1;
  }

  std::priority_queue<MergeEntry> queue;
  auto push_pair = [&](int pos) {
    const Symbol& left = symbols[static_cast<std::size_t>(pos)];
    if (left.next < 0) return;
    auto it = merges_.find(pair_key(left.id, symbols[static_cast<std::size_t>(left.next)].id));
    if (it != merges_.end()) queue.push({it->second.first, pos, it->second.second});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);

  while (!queue.empty()) {
    const MergeEntry top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<std::size_t>(top.pos)];
    if (left.removed || left.next < 0) continue;
    const int right_pos = left.next;
    Symbol& right = symbols[static_cast<std::size_t>(right_pos)];
    // Entries whose pair changed since they were queued are stale.
    auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.second != top.new_id) continue;
    left.id = top.new_id;
    left.next = right.next;
    right.removed = true;
    if (right.next >= 0) symbols[static_cast<std::size_t>(right.next)].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }

  std::vector<int32_t> ids;
  ids.reserve(symbols.size());
  for (const Symbol& s : symbols) {
    if (!s.removed) ids.push_back(s.id);
  }
  return ids;
}

}  // namespace vlm::tokenizer_detail
