#include "vlm/audit/merkle.h"

#include <bit>
#include <cstring>
#include <string>

#include "vlm/error.h"

namespace vlm::audit {

Digest merkle_leaf_hash(std::string_view leaf) {
  std::string buffer;
  buffer.reserve(leaf.size() + 1);
  buffer.push_back('\x00');
  buffer.append(leaf);
  return sha256(buffer);
}

Digest merkle_node_hash(const Digest& left, const Digest& right) {
  std::uint8_t buffer[65];
  buffer[0] = 0x01;
  std::memcpy(buffer + 1, left.data(), 32);
  std::memcpy(buffer + 33, right.data(), 32);
  return sha256(std::span<const std::uint8_t>(buffer, sizeof buffer));
}

MerkleFrontier::MerkleFrontier(std::uint64_t size, std::vector<Digest> nodes) : size_(size), nodes_(std::move(nodes)) {
  if (static_cast<std::size_t>(std::popcount(size_)) != nodes_.size()) {
    throw Error(ErrorCode::kInvalidArgument, "Merkle frontier for " + std::to_string(size_) + " leaves needs " +
                                                 std::to_string(std::popcount(size_)) + " nodes, got " +
                                                 std::to_string(nodes_.size()));
  }
}

void MerkleFrontier::append(std::string_view leaf) { append_leaf_hash(merkle_leaf_hash(leaf)); }

void MerkleFrontier::append_leaf_hash(const Digest& leaf_hash) {
  Digest carry = leaf_hash;
  // Each trailing 1-bit of the old size is a perfect subtree of the same height as `carry`: merge.
  for (std::uint64_t s = size_; (s & 1U) != 0; s >>= 1U) {
    carry = merkle_node_hash(nodes_.back(), carry);
    nodes_.pop_back();
  }
  nodes_.push_back(carry);
  ++size_;
}

Digest MerkleFrontier::root() const {
  if (nodes_.empty()) return sha256(std::string_view());
  Digest acc = nodes_.back();
  for (auto it = nodes_.rbegin() + 1; it != nodes_.rend(); ++it) acc = merkle_node_hash(*it, acc);
  return acc;
}

}  // namespace vlm::audit
