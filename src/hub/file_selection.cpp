#include "vlm/hub/file_selection.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "vlm/error.h"

namespace vlm::hub {
namespace fs = std::filesystem;
namespace {

// Read by the configuration, processor and tokenizer code when present; none is required alone.
constexpr std::array<std::string_view, 10> kSupportFiles = {
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "processor_config.json",  // transformers-native Florence-2: its post-processing settings
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
};

// Weight layouts the loaders read, in order of preference: safetensors maps without copying.
constexpr std::string_view kSafetensors = "model.safetensors";
constexpr std::string_view kSafetensorsIndex = "model.safetensors.index.json";
constexpr std::string_view kPytorchBin = "pytorch_model.bin";
constexpr std::string_view kPytorchBinIndex = "pytorch_model.bin.index.json";
constexpr std::string_view kTorchScriptSuffix = ".torchscript";

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

bool is_root_level(std::string_view path) { return path.find('/') == std::string_view::npos; }

std::string list_for_message(const std::vector<std::string>& files) {
  std::string listed;
  constexpr std::size_t kShown = 20;
  for (std::size_t i = 0; i < files.size() && i < kShown; ++i) listed += (i ? ", " : "") + files[i];
  if (files.size() > kShown) listed += ", ... (" + std::to_string(files.size()) + " files)";
  return listed.empty() ? "no files" : listed;
}

bool exists_in(const fs::path& dir, std::string_view name) {
  std::error_code error;
  return fs::exists(dir / std::string(name), error);  // follows the snapshot symlink to its blob
}

}  // namespace

bool is_safe_repo_path(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\\') != std::string_view::npos) return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

FileSelection select_model_files(const std::vector<std::string>& repo_files, std::string_view repo_label) {
  std::set<std::string_view> present(repo_files.begin(), repo_files.end());
  auto has = [&](std::string_view name) { return present.count(name) > 0; };

  FileSelection selection;
  if (has("config.json")) {
    for (std::string_view name : kSupportFiles) {
      if (has(name)) selection.files.emplace_back(name);
    }
    if (has(kSafetensors)) {
      selection.files.emplace_back(kSafetensors);
      return selection;
    }
    for (std::string_view index : {kSafetensorsIndex, kPytorchBinIndex}) {
      if (index == kPytorchBinIndex && has(kPytorchBin)) break;  // a single file beats shards
      if (has(index)) {
        selection.files.emplace_back(index);
        selection.shard_index = std::string(index);
        return selection;
      }
    }
    if (has(kPytorchBin)) {
      selection.files.emplace_back(kPytorchBin);
      return selection;
    }
  }
  // Ultralytics exports live alone in a repository: one or more `<name>.torchscript` at the root.
  selection.files.clear();
  for (const std::string& file : repo_files) {
    if (is_root_level(file) && ends_with(file, kTorchScriptSuffix)) selection.files.push_back(file);
  }
  if (!selection.files.empty()) return selection;

  throw Error(ErrorCode::kUnsupportedModel,
              std::string(repo_label) +
                  " holds nothing vlmserve can load: expected config.json with model.safetensors, "
                  "model.safetensors.index.json or pytorch_model.bin, or a *.torchscript export; found " +
                  list_for_message(repo_files));
}

std::vector<std::string> shards_from_index(std::string_view index_json, std::string_view index_name) {
  nlohmann::json index = nlohmann::json::parse(index_json, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) {
    throw Error(ErrorCode::kBadCheckpoint, std::string(index_name) + " is not a JSON object");
  }
  auto map = index.find("weight_map");
  if (map == index.end() || !map->is_object() || map->empty()) {
    throw Error(ErrorCode::kBadCheckpoint, std::string(index_name) + " has no \"weight_map\" object");
  }
  std::vector<std::string> shards;
  std::set<std::string> seen;
  for (const auto& [tensor, file] : map->items()) {
    if (!file.is_string()) {
      throw Error(ErrorCode::kBadCheckpoint, std::string(index_name) + ": weight_map[\"" + tensor + "\"] is " +
                                                 file.type_name() + ", expected a file name");
    }
    std::string name = file.get<std::string>();
    if (!is_safe_repo_path(name)) {
      throw Error(ErrorCode::kBadCheckpoint, std::string(index_name) + ": weight_map[\"" + tensor + "\"] names '" +
                                                 name + "', which is outside the repository");
    }
    if (seen.insert(name).second) shards.push_back(name);
  }
  return shards;
}

bool snapshot_is_complete(const fs::path& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) return false;
  if (exists_in(dir, "config.json")) {
    if (exists_in(dir, kSafetensors) || exists_in(dir, kPytorchBin)) return true;
    for (std::string_view index : {kSafetensorsIndex, kPytorchBinIndex}) {
      if (!exists_in(dir, index)) continue;
      std::ifstream in(dir / std::string(index));
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      try {
        std::vector<std::string> shards = shards_from_index(text, index);
        return std::all_of(shards.begin(), shards.end(),
                           [&](const std::string& shard) { return exists_in(dir, shard); });
      } catch (const Error&) {
        return false;
      }
    }
    return false;
  }
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (ends_with(entry.path().filename().string(), kTorchScriptSuffix) && fs::exists(entry.path(), error)) return true;
  }
  return false;
}

}  // namespace vlm::hub
