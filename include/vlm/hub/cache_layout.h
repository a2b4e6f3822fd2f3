#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace vlm::hub {

// "org/repo" -> "models--org--repo", huggingface_hub's folder name, so both tools share a cache.
std::string repo_folder_name(std::string_view repo_id);

// One repository's corner of a cache laid out like huggingface_hub's:
//   <cache>/models--org--repo/blobs/<sha256 or git blob id>
//   <cache>/models--org--repo/snapshots/<commit>/<file>  -> ../../blobs/<id> (relative symlink)
//   <cache>/models--org--repo/refs/<revision>            holding the commit
//   <cache>/.locks/models--org--repo/<id>.lock
class RepoCache {
 public:
  RepoCache(std::filesystem::path cache_root, std::string_view repo_id);

  const std::filesystem::path& cache_root() const { return cache_root_; }
  const std::filesystem::path& repo_dir() const { return repo_dir_; }
  std::filesystem::path blob_path(std::string_view blob_id) const;
  std::filesystem::path incomplete_path(std::string_view blob_id) const;
  std::filesystem::path lock_path(std::string_view blob_id) const;
  std::filesystem::path snapshot_dir(std::string_view commit) const;
  std::filesystem::path snapshot_file(std::string_view commit, std::string_view repo_path) const;

  // The commit a branch or tag pointed to when last fetched; nullopt when never fetched.
  std::optional<std::string> read_ref(std::string_view revision) const;
  void write_ref(std::string_view revision, std::string_view commit) const;
  // Points snapshots/<commit>/<repo_path> at blobs/<blob_id>, replacing any older link atomically.
  void link_snapshot_file(std::string_view commit, std::string_view repo_path, std::string_view blob_id) const;

 private:
  std::filesystem::path cache_root_;
  std::filesystem::path repo_dir_;
  std::string folder_name_;
};

// Writes `content` to a temporary file beside `path`, flushes it and renames it over `path`.
void write_file_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace vlm::hub
