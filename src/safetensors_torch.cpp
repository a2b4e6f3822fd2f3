#include <ATen/ATen.h>

#include "safetensors_mapping.h"
#include "vlm/error.h"
#include "vlm/safetensors.h"

namespace vlm {
namespace {

at::ScalarType to_scalar_type(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::kBool: return at::kBool;
    case SafetensorsDtype::kU8: return at::kByte;
    case SafetensorsDtype::kI8: return at::kChar;
    case SafetensorsDtype::kI16: return at::kShort;
    case SafetensorsDtype::kU16: return at::kUInt16;
    case SafetensorsDtype::kF16: return at::kHalf;
    case SafetensorsDtype::kBF16: return at::kBFloat16;
    case SafetensorsDtype::kI32: return at::kInt;
    case SafetensorsDtype::kU32: return at::kUInt32;
    case SafetensorsDtype::kF32: return at::kFloat;
    case SafetensorsDtype::kF64: return at::kDouble;
    case SafetensorsDtype::kI64: return at::kLong;
    case SafetensorsDtype::kU64: return at::kUInt64;
    case SafetensorsDtype::kF8E4M3: return at::kFloat8_e4m3fn;
    case SafetensorsDtype::kF8E5M2: return at::kFloat8_e5m2;
    case SafetensorsDtype::kF8E8M0: return at::kFloat8_e8m0fnu;
    case SafetensorsDtype::kC64: return at::kComplexFloat;
  }
  throw Error(ErrorCode::kInternal, "unmapped safetensors dtype");
}

}  // namespace

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw Error(ErrorCode::kNotFound, path_.string() + " has no tensor " + name);
  const SafetensorsEntry& entry = it->second;
  auto options = at::TensorOptions().dtype(to_scalar_type(entry.dtype)).device(at::kCPU);
  std::uint8_t* data = mapping_->data() + data_offset_ + entry.begin;
  std::size_t alignment = safetensors_dtype_size(entry.dtype);
  if (reinterpret_cast<std::uintptr_t>(data) % alignment != 0) {
    at::Tensor copy = at::empty(entry.shape, options);
    std::memcpy(copy.data_ptr(), data, entry.end - entry.begin);
    return copy;
  }
  auto keep_alive = mapping_;
  return at::from_blob(
      data, entry.shape, [keep_alive](void*) {}, options);
}

at::Tensor SafetensorsCheckpoint::tensor(const std::string& name) const {
  auto it = file_of_.find(name);
  if (it == file_of_.end()) throw Error(ErrorCode::kNotFound, "checkpoint has no tensor " + name);
  return files_[it->second].tensor(name);
}

}  // namespace vlm
