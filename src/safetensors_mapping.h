#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace vlm {

// A whole file mapped copy-on-write; tensors made from it share ownership through a shared_ptr.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace vlm
