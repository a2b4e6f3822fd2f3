#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "vlm/audit/crypto.h"

namespace vlm::audit {

// RFC 6962 section 2.1 hashing: leaves and interior nodes get distinct prefixes so a leaf can never
// be passed off as a node (second-preimage attacks on the tree).
Digest merkle_leaf_hash(std::string_view leaf);
Digest merkle_node_hash(const Digest& left, const Digest& right);

// The Merkle tree head of a growing log in O(log n) memory: the roots of the perfect subtrees that
// make up the binary decomposition of the size, largest first. RFC 6962 splits a tree of n leaves at
// the largest power of two below n, so folding these roots right to left gives exactly MTH(D[n]).
class MerkleFrontier {
 public:
  MerkleFrontier() = default;
  // Restores a frontier saved with `nodes()`; throws kInvalidArgument when the count of nodes does
  // not match the popcount of `size`.
  MerkleFrontier(std::uint64_t size, std::vector<Digest> nodes);

  void append(std::string_view leaf);
  void append_leaf_hash(const Digest& leaf_hash);
  Digest root() const;  // SHA-256("") for the empty tree, as RFC 6962 defines
  std::uint64_t size() const { return size_; }
  const std::vector<Digest>& nodes() const { return nodes_; }

 private:
  std::uint64_t size_ = 0;
  std::vector<Digest> nodes_;
};

}  // namespace vlm::audit
