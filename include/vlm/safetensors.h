#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace at {
class Tensor;
}

namespace vlm {

// The element types of the safetensors format.
enum class SafetensorsDtype {
  kBool,
  kU8,
  kI8,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64,
  kF8E4M3,
  kF8E5M2,
  kF8E8M0,
  kC64,
};

struct SafetensorsEntry {
  std::string name;
  SafetensorsDtype dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // offsets into the data section
  std::uint64_t end = 0;
};

class MappedFile;

// One .safetensors file, memory-mapped. The header is validated on open: well-formed JSON, known
// dtypes, offsets in bounds, no overlaps or holes, byte size = element size x shape.
// Errors are vlm::Error kBadCheckpoint naming the file and the tensor.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const nlohmann::json& metadata() const { return metadata_; }
  // Zero-copy CPU tensor over the mapping (copy-on-write, the file is never modified); it keeps
  // the mapping alive. Misaligned data is copied. Throws kNotFound for an unknown name.
  at::Tensor tensor(const std::string& name) const;

 private:
  std::filesystem::path path_;
  std::shared_ptr<MappedFile> mapping_;
  std::uint64_t data_offset_ = 0;
  std::map<std::string, SafetensorsEntry> entries_;
  nlohmann::json metadata_;
};

// A checkpoint: one model.safetensors, or shards listed by model.safetensors.index.json.
class SafetensorsCheckpoint {
 public:
  // `path` is a .safetensors file, an index .json, or a folder holding either.
  explicit SafetensorsCheckpoint(const std::filesystem::path& path);

  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  const SafetensorsEntry& entry(const std::string& name) const;
  at::Tensor tensor(const std::string& name) const;

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, std::size_t> file_of_;  // tensor name -> index in files_
};

std::size_t safetensors_dtype_size(SafetensorsDtype dtype);
SafetensorsDtype parse_safetensors_dtype(const std::string& name);  // throws kBadCheckpoint

}  // namespace vlm
