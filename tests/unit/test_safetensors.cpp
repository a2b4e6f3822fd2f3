// The safetensors reader against files written by the Python `safetensors` library (core_fixtures.py):
// every dtype read back bit-exactly, zero-copy over the mapping, sharded checkpoints, and each kind of
// corrupted header rejected with an error that names the file and the tensor.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core_test_data.h"
#include "vlm/error.h"
#include "vlm/safetensors.h"

namespace vlm {
namespace {

namespace fs = std::filesystem;
using test::core_data;
using test::read_bytes;
using test::read_json;

fs::path tensors_dir() { return core_data() / "safetensors"; }
fs::path all_dtypes() { return tensors_dir() / "all_dtypes.safetensors"; }

const std::map<std::string, at::ScalarType>& expected_scalar_types() {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"BOOL", at::kBool},
      {"U8", at::kByte},
      {"I8", at::kChar},
      {"I16", at::kShort},
      {"U16", at::kUInt16},
      {"F16", at::kHalf},
      {"BF16", at::kBFloat16},
      {"I32", at::kInt},
      {"U32", at::kUInt32},
      {"F32", at::kFloat},
      {"F64", at::kDouble},
      {"I64", at::kLong},
      {"U64", at::kUInt64},
      {"F8_E4M3", at::kFloat8_e4m3fn},
      {"F8_E5M2", at::kFloat8_e5m2},
      {"C64", at::kComplexFloat},
  };
  return kTypes;
}

bool is_signed_integer(const std::string& dtype) {
  return dtype == "I8" || dtype == "I16" || dtype == "I32" || dtype == "I64";
}
bool is_unsigned_integer(const std::string& dtype) {
  return dtype == "BOOL" || dtype == "U8" || dtype == "U16" || dtype == "U32" || dtype == "U64";
}

// Integers are read from the raw bytes so that values beyond 2^53 and the unsigned 64-bit range
// compare exactly, without relying on torch's conversions of the barebones unsigned types.
std::uint64_t raw_element(const at::Tensor& t, std::int64_t i) {
  std::uint64_t bits = 0;
  const auto size = static_cast<std::size_t>(t.element_size());
  std::memcpy(&bits, static_cast<const std::uint8_t*>(t.data_ptr()) + i * t.element_size(), size);
  return bits;
}

std::int64_t sign_extend(std::uint64_t bits, std::size_t bytes) {
  if (bytes == 8) return static_cast<std::int64_t>(bits);
  const std::uint64_t sign = std::uint64_t{1} << (bytes * 8 - 1);
  return static_cast<std::int64_t>((bits ^ sign) - sign);
}

void expect_values(const std::string& name, const at::Tensor& tensor, const nlohmann::json& expected) {
  const std::string dtype = expected["dtype"];
  ASSERT_EQ(tensor.scalar_type(), expected_scalar_types().at(dtype)) << name;
  ASSERT_EQ(tensor.sizes().vec(), expected["shape"].get<std::vector<std::int64_t>>()) << name;
  ASSERT_TRUE(tensor.device().is_cpu()) << name;
  const auto& values = expected["values"];
  ASSERT_EQ(static_cast<std::size_t>(tensor.numel()), values.size()) << name;
  at::Tensor t = tensor.contiguous();
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const auto& want = values[static_cast<std::size_t>(i)];
    if (is_signed_integer(dtype)) {
      ASSERT_EQ(sign_extend(raw_element(t, i), t.element_size()), want.get<std::int64_t>()) << name << "[" << i << "]";
    } else if (is_unsigned_integer(dtype)) {
      ASSERT_EQ(raw_element(t, i), want.get<std::uint64_t>()) << name << "[" << i << "]";
    }
  }
  if (dtype == "C64") {
    at::Tensor parts = at::view_as_real(t).to(at::kDouble).flatten();
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      ASSERT_EQ(parts[2 * i].item<double>(), values[i][0].get<double>()) << name << "[" << i << "].real";
      ASSERT_EQ(parts[2 * i + 1].item<double>(), values[i][1].get<double>()) << name << "[" << i << "].imag";
    }
  } else if (!is_signed_integer(dtype) && !is_unsigned_integer(dtype)) {
    // Every float dtype here converts to double exactly, so equality is the right check.
    at::Tensor as_double = t.to(at::kDouble).flatten();
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      ASSERT_EQ(as_double[i].item<double>(), values[i].get<double>()) << name << "[" << i << "]";
    }
  }
}

TEST(Safetensors, ReadsEveryDtypeBitExactlyAsThePythonLibraryWroteIt) {
  nlohmann::json manifest = read_json(tensors_dir() / "manifest.json");
  SafetensorsFile file(all_dtypes());
  ASSERT_EQ(file.entries().size(), manifest.size());
  std::set<std::string> dtypes_seen;
  for (const auto& [name, expected] : manifest.items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(file.entries().contains(name));
    const SafetensorsEntry& entry = file.entries().at(name);
    EXPECT_EQ(entry.dtype, parse_safetensors_dtype(expected["dtype"]));
    EXPECT_EQ(entry.end - entry.begin,
              safetensors_dtype_size(entry.dtype) * static_cast<std::uint64_t>(file.tensor(name).numel()));
    expect_values(name, file.tensor(name), expected);
    dtypes_seen.insert(expected["dtype"].get<std::string>());
  }
  // The fixture must really have exercised every dtype of the map above.
  EXPECT_EQ(dtypes_seen.size(), expected_scalar_types().size());
  EXPECT_EQ(file.metadata().value("format", ""), "pt");
  EXPECT_EQ(file.metadata().value("note", ""), "core fixtures");
}

TEST(Safetensors, TensorsAreViewsIntoOneMappingNotCopies) {
  SafetensorsFile file(all_dtypes());
  std::vector<const SafetensorsEntry*> entries;
  for (const auto& [name, entry] : file.entries()) {
    if (entry.end > entry.begin) entries.push_back(&entry);
  }
  ASSERT_GT(entries.size(), 10U);
  std::sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  // If every tensor's address differs from the first one's by exactly the distance between their
  // offsets in the file, they all point into one contiguous image of the data section: no copies.
  at::Tensor first = file.tensor(entries.front()->name);
  const auto* base = static_cast<const std::uint8_t*>(first.data_ptr());
  for (const SafetensorsEntry* entry : entries) {
    at::Tensor t = file.tensor(entry->name);
    EXPECT_EQ(static_cast<const std::uint8_t*>(t.data_ptr()) - base,
              static_cast<std::ptrdiff_t>(entry->begin - entries.front()->begin))
        << entry->name;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % t.element_size(), 0U) << entry->name;
  }
  // And the bytes there are the file's bytes.
  std::vector<std::uint8_t> bytes = read_bytes(all_dtypes());
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  const SafetensorsEntry& last = *entries.back();
  at::Tensor t = file.tensor(last.name);
  EXPECT_EQ(std::memcmp(t.data_ptr(), bytes.data() + 8 + header_size + last.begin, last.end - last.begin), 0);
}

TEST(Safetensors, WritingToATensorLeavesTheFileAlone) {
  const std::vector<std::uint8_t> before = read_bytes(all_dtypes());
  nlohmann::json manifest = read_json(tensors_dir() / "manifest.json");
  {
    SafetensorsFile file(all_dtypes());
    at::Tensor t = file.tensor("t.f32");
    t.fill_(123.0F);
    EXPECT_EQ(t[0][0].item<float>(), 123.0F);
  }
  EXPECT_EQ(read_bytes(all_dtypes()), before);
  SafetensorsFile reopened(all_dtypes());
  expect_values("t.f32", reopened.tensor("t.f32"), manifest["t.f32"]);
}

TEST(Safetensors, TensorOutlivesTheFileObject) {
  nlohmann::json manifest = read_json(tensors_dir() / "manifest.json");
  at::Tensor kept;
  {
    SafetensorsFile file(all_dtypes());
    kept = file.tensor("big.f32");
  }
  // The mapping must still be alive: the deleter holds it.
  expect_values("big.f32", kept, manifest["big.f32"]);
  EXPECT_FLOAT_EQ(kept.sum().item<float>(),
                  at::tensor(manifest["big.f32"]["values"].get<std::vector<float>>()).sum().item<float>());
}

TEST(Safetensors, MisalignedTensorIsCopiedAndReadRight) {
  SafetensorsFile file(tensors_dir() / "misaligned.safetensors");
  at::Tensor t = file.tensor("odd.f32");
  at::Tensor pad = file.tensor("pad.u8");
  // The fixture aligned the data section to 8 bytes, so byte 1 of it is misaligned for a float.
  ASSERT_EQ(reinterpret_cast<std::uintptr_t>(pad.data_ptr()) % 8, 0U);
  EXPECT_NE(t.data_ptr(), static_cast<std::uint8_t*>(pad.data_ptr()) + 1);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % alignof(float), 0U);
  ASSERT_EQ(t.numel(), 3);
  EXPECT_EQ(t[0].item<float>(), 1.25F);
  EXPECT_EQ(t[1].item<float>(), -2.5F);
  EXPECT_EQ(t[2].item<float>(), 3.0e7F);
  EXPECT_EQ(file.tensor("pad.u8")[0].item<std::uint8_t>(), 7);
}

TEST(Safetensors, UnknownTensorNameIsNotFound) {
  SafetensorsFile file(all_dtypes());
  try {
    file.tensor("no.such.tensor");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("no.such.tensor"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, DtypeTable) {
  for (const auto& [name, type] : expected_scalar_types()) {
    EXPECT_EQ(safetensors_dtype_size(parse_safetensors_dtype(name)), c10::elementSize(type)) << name;
  }
  EXPECT_EQ(safetensors_dtype_size(parse_safetensors_dtype("F8_E8M0")), 1U);
  EXPECT_THROW(parse_safetensors_dtype("f32"), Error);  // names are case-sensitive in the format
  EXPECT_THROW(parse_safetensors_dtype(""), Error);
}

void expect_error(const fs::path& path, ErrorCode code, const std::vector<std::string>& fragments) {
  SCOPED_TRACE(path.filename().string());
  try {
    SafetensorsCheckpoint checkpoint(path);
    FAIL() << "opened without an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& fragment : fragments) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << "'" << fragment << "' not in: " << e.what();
    }
  }
}

struct BadFile {
  const char* file;
  std::vector<std::string> fragments;
};

TEST(Safetensors, CorruptedHeadersAreRejectedNamingTheProblem) {
  const std::vector<BadFile> cases = {
      {"too_short.safetensors", {"too short"}},
      {"header_too_long.safetensors", {"header length 1048576 exceeds the file"}},
      {"header_not_json.safetensors", {"not a JSON object"}},
      {"header_array.safetensors", {"not a JSON object"}},
      {"overlap.safetensors", {"second.w", "overlaps"}},
      {"out_of_range.safetensors", {"far.w", "run past the data section"}},
      {"size_mismatch.safetensors", {"odd.w", "20 bytes", "F32", "[2, 3]", "needs 24"}},
      {"hole.safetensors", {"b.w", "gap of 4 bytes"}},
      {"trailing.safetensors", {"4 bytes that no tensor uses"}},
      {"unknown_dtype.safetensors", {"strange.w", "Q7"}},
      {"negative_dim.safetensors", {"neg.w", "negative"}},
      {"missing_field.safetensors", {"nooff.w", "data_offsets"}},
      {"reversed_offsets.safetensors", {"rev.w", "end before"}},
  };
  for (const BadFile& bad : cases) {
    std::vector<std::string> fragments = bad.fragments;
    fragments.push_back(bad.file);  // every message names the file
    expect_error(tensors_dir() / "bad" / bad.file, ErrorCode::kBadCheckpoint, fragments);
  }
}

TEST(Safetensors, TruncatedFileNamesTheFirstTensorThatRunsPastTheEnd) {
  // The fixture cut 37 bytes off the good file; the first tensor (by offset) that no longer fits is named.
  SafetensorsFile good(all_dtypes());
  std::uint64_t data_size = 0;
  for (const auto& [name, entry] : good.entries()) data_size = std::max(data_size, entry.end);
  const std::uint64_t truncated_size = data_size - 37;
  const SafetensorsEntry* first_cut = nullptr;
  for (const auto& [name, entry] : good.entries()) {
    if (entry.end > truncated_size && (first_cut == nullptr || entry.begin < first_cut->begin)) first_cut = &entry;
  }
  ASSERT_NE(first_cut, nullptr);
  expect_error(tensors_dir() / "bad" / "truncated.safetensors", ErrorCode::kBadCheckpoint,
               {"tensor " + first_cut->name + " ", "(" + std::to_string(truncated_size) + " bytes)",
                "run past the data section"});
}

TEST(SafetensorsCheckpoint, ShardedCheckpointFromFolderOrIndex) {
  nlohmann::json reference = read_json(tensors_dir() / "sharded" / "model_ref.json");
  for (const fs::path& path : {tensors_dir() / "sharded", tensors_dir() / "sharded" / "model.safetensors.index.json"}) {
    SCOPED_TRACE(path.string());
    SafetensorsCheckpoint checkpoint(path);
    std::vector<std::string> names = checkpoint.names();
    ASSERT_EQ(names.size(), reference.size());
    for (const auto& [name, values] : reference.items()) {
      ASSERT_TRUE(checkpoint.contains(name)) << name;
      at::Tensor t = checkpoint.tensor(name).to(at::kDouble).flatten();
      ASSERT_EQ(static_cast<std::size_t>(t.numel()), values.size()) << name;
      for (std::int64_t i = 0; i < t.numel(); ++i) {
        if (name == "model.head.index") {
          EXPECT_EQ(checkpoint.tensor(name)[i].item<std::int64_t>(), values[i].get<std::int64_t>()) << name;
        } else {
          EXPECT_EQ(t[i].item<double>(), values[i].get<double>()) << name << "[" << i << "]";
        }
      }
    }
    EXPECT_EQ(checkpoint.entry("model.layer.0.bias").dtype, SafetensorsDtype::kBF16);
    EXPECT_EQ(checkpoint.entry("model.layer.1.weight").shape, (std::vector<std::int64_t>{2, 2, 3}));
    EXPECT_FALSE(checkpoint.contains("model.missing"));
    try {
      checkpoint.tensor("model.missing");
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kNotFound);
      EXPECT_NE(std::string(e.what()).find("model.missing"), std::string::npos);
    }
    EXPECT_THROW(checkpoint.entry("model.missing"), Error);
  }
}

TEST(SafetensorsCheckpoint, SingleFileCheckpoint) {
  SafetensorsCheckpoint checkpoint(all_dtypes());
  nlohmann::json manifest = read_json(tensors_dir() / "manifest.json");
  EXPECT_EQ(checkpoint.names().size(), manifest.size());
  expect_values("t.bf16", checkpoint.tensor("t.bf16"), manifest["t.bf16"]);
}

TEST(SafetensorsCheckpoint, BrokenIndexesAreRejectedNamingTheProblem) {
  const fs::path bad = tensors_dir() / "bad_index";
  expect_error(bad / "missing_shard", ErrorCode::kNotFound, {"model-00003-of-00003.safetensors"});
  expect_error(bad / "not_in_shard", ErrorCode::kBadCheckpoint,
               {"model.head.index", "model-00001-of-00002.safetensors", "does not hold it"});
  expect_error(bad / "unlisted", ErrorCode::kBadCheckpoint, {"model.layer.0.bias", "not listed in the index"});
  expect_error(bad / "outside", ErrorCode::kBadCheckpoint, {"model.embed.weight", "outside the checkpoint folder"});
  expect_error(bad / "not_json", ErrorCode::kBadCheckpoint, {"weight_map"});
  expect_error(bad / "empty_folder", ErrorCode::kNotFound, {"empty_folder"});
  expect_error(bad / "no_such.safetensors", ErrorCode::kNotFound, {"no_such.safetensors"});
}

}  // namespace
}  // namespace vlm
