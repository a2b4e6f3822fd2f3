#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace vlm::hub {

// The files of a repository that vlmserve's loaders read (configs, tokenizer, one weights format, or
// a YOLO TorchScript export); READMEs, other frameworks' weights and remote code stay on the hub.
struct FileSelection {
  std::vector<std::string> files;  // fetched first, in this order
  std::string shard_index;         // a *.index.json among files whose shards are needed too; or empty
};

// Throws vlm::Error kUnsupportedModel listing what the repository holds when nothing is loadable.
FileSelection select_model_files(const std::vector<std::string>& repo_files, std::string_view repo_label);

// The shard file names a `*.index.json` weight map refers to, deduplicated in first-seen order.
// Throws vlm::Error kBadCheckpoint when the index is malformed or names a path outside the repo.
std::vector<std::string> shards_from_index(std::string_view index_json, std::string_view index_name);

// Whether a snapshot folder holds a loadable model (config and every weight file, or a TorchScript
// export). Offline resolution uses it because there is no file list to compare against.
bool snapshot_is_complete(const std::filesystem::path& dir);

// Refuses paths that could escape the snapshot folder ("..", absolute, backslashes, empty parts).
bool is_safe_repo_path(std::string_view path);

}  // namespace vlm::hub
