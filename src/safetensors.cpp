#include "vlm/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include "safetensors_mapping.h"
#include "vlm/error.h"

namespace vlm {
namespace {

// Guards against a header length that would make us allocate gigabytes of JSON.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void bad(const std::filesystem::path& path, const std::string& what) {
  throw Error(ErrorCode::kBadCheckpoint, path.string() + ": " + what);
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

SafetensorsEntry parse_entry(const std::filesystem::path& path, const std::string& name, const nlohmann::json& spec) {
  if (!spec.is_object() || !spec.contains("dtype") || !spec.contains("shape") || !spec.contains("data_offsets")) {
    bad(path, "tensor " + name + " needs dtype, shape and data_offsets");
  }
  SafetensorsEntry entry;
  entry.name = name;
  if (!spec["dtype"].is_string()) bad(path, "tensor " + name + " has a non-string dtype");
  try {
    entry.dtype = parse_safetensors_dtype(spec["dtype"].get<std::string>());
  } catch (const Error& e) {
    bad(path, "tensor " + name + ": " + e.what());
  }
  const auto& shape = spec["shape"];
  const auto& offsets = spec["data_offsets"];
  if (!shape.is_array()) bad(path, "tensor " + name + " has a non-array shape");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    bad(path, "tensor " + name + " data_offsets must be two non-negative integers");
  }
  std::uint64_t elements = 1;
  for (const auto& dim : shape) {
    if (!dim.is_number_unsigned()) bad(path, "tensor " + name + " has a negative or non-integer dimension");
    auto d = dim.get<std::uint64_t>();
    if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
        (d != 0 && elements > std::numeric_limits<std::uint64_t>::max() / d)) {
      bad(path, "tensor " + name + " shape overflows");
    }
    elements *= d;
    entry.shape.push_back(static_cast<std::int64_t>(d));
  }
  entry.begin = offsets[0].get<std::uint64_t>();
  entry.end = offsets[1].get<std::uint64_t>();
  if (entry.end < entry.begin) bad(path, "tensor " + name + " data_offsets end before they begin");
  std::uint64_t element_size = safetensors_dtype_size(entry.dtype);
  if (elements > std::numeric_limits<std::uint64_t>::max() / element_size ||
      entry.end - entry.begin != elements * element_size) {
    bad(path, "tensor " + name + " has " + std::to_string(entry.end - entry.begin) + " bytes but dtype " +
                  spec["dtype"].get<std::string>() + " x shape " + shape_string(entry.shape) + " needs " +
                  std::to_string(elements * element_size));
  }
  return entry;
}

}  // namespace

std::size_t safetensors_dtype_size(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::kBool:
    case SafetensorsDtype::kU8:
    case SafetensorsDtype::kI8:
    case SafetensorsDtype::kF8E4M3:
    case SafetensorsDtype::kF8E5M2:
    case SafetensorsDtype::kF8E8M0: return 1;
    case SafetensorsDtype::kI16:
    case SafetensorsDtype::kU16:
    case SafetensorsDtype::kF16:
    case SafetensorsDtype::kBF16: return 2;
    case SafetensorsDtype::kI32:
    case SafetensorsDtype::kU32:
    case SafetensorsDtype::kF32: return 4;
    case SafetensorsDtype::kF64:
    case SafetensorsDtype::kI64:
    case SafetensorsDtype::kU64:
    case SafetensorsDtype::kC64: return 8;
  }
  return 1;
}

SafetensorsDtype parse_safetensors_dtype(const std::string& name) {
  static const std::pair<const char*, SafetensorsDtype> kNames[] = {
      {"BOOL", SafetensorsDtype::kBool},      {"U8", SafetensorsDtype::kU8},
      {"I8", SafetensorsDtype::kI8},          {"I16", SafetensorsDtype::kI16},
      {"U16", SafetensorsDtype::kU16},        {"F16", SafetensorsDtype::kF16},
      {"BF16", SafetensorsDtype::kBF16},      {"I32", SafetensorsDtype::kI32},
      {"U32", SafetensorsDtype::kU32},        {"F32", SafetensorsDtype::kF32},
      {"F64", SafetensorsDtype::kF64},        {"I64", SafetensorsDtype::kI64},
      {"U64", SafetensorsDtype::kU64},        {"F8_E4M3", SafetensorsDtype::kF8E4M3},
      {"F8_E5M2", SafetensorsDtype::kF8E5M2}, {"F8_E8M0", SafetensorsDtype::kF8E8M0},
      {"C64", SafetensorsDtype::kC64},
  };
  for (const auto& [text, dtype] : kNames) {
    if (name == text) return dtype;
  }
  throw Error(ErrorCode::kBadCheckpoint, "unsupported dtype '" + name + "'");
}

MappedFile::MappedFile(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                "cannot open " + path.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(ErrorCode::kIo, "cannot stat " + path.string());
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    // Private and writable: tensors over the mapping may be written to (copy-on-write) without
    // faulting or touching the file.
    void* data = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
      ::close(fd);
      throw Error(ErrorCode::kIo, "cannot map " + path.string() + ": " + std::strerror(errno));
    }
    data_ = static_cast<std::uint8_t*>(data);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path)
    : path_(path), mapping_(std::make_shared<MappedFile>(path)) {
  if (mapping_->size() < 8) bad(path, "file is " + std::to_string(mapping_->size()) + " bytes, too short for a header");
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, mapping_->data(), 8);  // little-endian on every platform we build for
  if (header_size > kMaxHeaderBytes || header_size > mapping_->size() - 8) {
    bad(path, "header length " + std::to_string(header_size) + " exceeds the file (" +
                  std::to_string(mapping_->size()) + " bytes)");
  }
  data_offset_ = 8 + header_size;
  const char* text = reinterpret_cast<const char*>(mapping_->data() + 8);
  nlohmann::json header = nlohmann::json::parse(text, text + header_size, nullptr, false);
  if (header.is_discarded() || !header.is_object()) bad(path, "header is not a JSON object");

  std::vector<const SafetensorsEntry*> by_offset;
  for (const auto& [name, spec] : header.items()) {
    if (name == "__metadata__") {
      metadata_ = spec;
      continue;
    }
    auto [it, inserted] = entries_.emplace(name, parse_entry(path, name, spec));
    by_offset.push_back(&it->second);
  }
  std::uint64_t data_size = mapping_->size() - data_offset_;
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  std::uint64_t expected_begin = 0;
  for (const SafetensorsEntry* entry : by_offset) {
    if (entry->end > data_size) {
      bad(path, "tensor " + entry->name + " data_offsets [" + std::to_string(entry->begin) + ", " +
                    std::to_string(entry->end) + ") run past the data section (" + std::to_string(data_size) +
                    " bytes)");
    }
    if (entry->begin < expected_begin) bad(path, "tensor " + entry->name + " overlaps the tensor before it");
    if (entry->begin > expected_begin) {
      bad(path, "tensor " + entry->name + " leaves a gap of " + std::to_string(entry->begin - expected_begin) +
                    " bytes before it");
    }
    expected_begin = entry->end;
  }
  if (expected_begin != data_size) {
    bad(path, "data section has " + std::to_string(data_size - expected_begin) + " bytes that no tensor uses");
  }
}

SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::filesystem::path& path) {
  std::filesystem::path target = path;
  if (std::filesystem::is_directory(path)) {
    if (std::filesystem::exists(path / "model.safetensors.index.json")) {
      target = path / "model.safetensors.index.json";
    } else if (std::filesystem::exists(path / "model.safetensors")) {
      target = path / "model.safetensors";
    } else {
      throw Error(ErrorCode::kNotFound,
                  path.string() + " holds neither model.safetensors nor model.safetensors.index.json");
    }
  }
  if (target.extension() != ".json") {
    files_.emplace_back(target);
    for (const auto& [name, entry] : files_.back().entries()) file_of_[name] = 0;
    return;
  }
  std::ifstream in(target);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open " + target.string());
  nlohmann::json index = nlohmann::json::parse(in, nullptr, false);
  if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    bad(target, "index needs a weight_map object");
  }
  std::map<std::string, std::size_t> shard_index;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) bad(target, "weight_map entry for " + name + " is not a file name");
    auto file_name = shard.get<std::string>();
    if (file_name.find('/') != std::string::npos || file_name.find("..") != std::string::npos) {
      bad(target, "weight_map entry for " + name + " points outside the checkpoint folder: " + file_name);
    }
    auto [it, inserted] = shard_index.emplace(file_name, files_.size());
    if (inserted) files_.emplace_back(target.parent_path() / file_name);
    if (!files_[it->second].entries().contains(name)) {
      bad(target, "tensor " + name + " is mapped to " + file_name + " but that shard does not hold it");
    }
    file_of_[name] = it->second;
  }
  for (std::size_t i = 0; i < files_.size(); ++i) {
    for (const auto& [name, entry] : files_[i].entries()) {
      if (!file_of_.contains(name)) bad(files_[i].path(), "tensor " + name + " is not listed in the index");
      if (file_of_[name] != i) bad(files_[i].path(), "tensor " + name + " also appears in another shard");
    }
  }
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(file_of_.size());
  for (const auto& [name, file] : file_of_) out.push_back(name);
  return out;
}

bool SafetensorsCheckpoint::contains(const std::string& name) const { return file_of_.contains(name); }

const SafetensorsEntry& SafetensorsCheckpoint::entry(const std::string& name) const {
  auto it = file_of_.find(name);
  if (it == file_of_.end()) throw Error(ErrorCode::kNotFound, "checkpoint has no tensor " + name);
  return files_[it->second].entries().at(name);
}

}  // namespace vlm
