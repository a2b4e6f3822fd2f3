#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace vlm::hub {

// Streaming hash of a blob as the hub names it: SHA-256 of the content for LFS files, and git's
// blob id (SHA-1 over "blob <size>\0" + content) for files kept in git itself.
class BlobHasher {
 public:
  static BlobHasher sha256();
  static BlobHasher git_blob_sha1(std::uint64_t size);

  BlobHasher(BlobHasher&&) noexcept;
  BlobHasher& operator=(BlobHasher&&) noexcept;
  ~BlobHasher();

  void update(const void* data, std::size_t size);
  std::string hex_digest();  // finishes the hash; lowercase hex
  std::string_view algorithm() const { return algorithm_; }

 private:
  struct State;
  static BlobHasher create(bool use_sha256);
  BlobHasher(std::unique_ptr<State> state, std::string_view algorithm);
  std::unique_ptr<State> state_;
  std::string_view algorithm_;
};

bool is_sha256_hex(std::string_view text);
bool is_sha1_hex(std::string_view text);

}  // namespace vlm::hub
