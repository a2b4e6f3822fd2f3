#include "vlm/hub/cache_layout.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "vlm/error.h"

namespace vlm::hub {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void throw_io(const std::string& action, const fs::path& path, int error) {
  throw Error(ErrorCode::kIo, action + " " + path.string() + ": " + std::generic_category().message(error));
}

// A unique name beside `path` for write-then-rename, so concurrent writers never share one.
fs::path temporary_sibling(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  // Appended piecewise: GCC 12 reports a false -Wrestrict for `"." + std::string` at -O3.
  std::string name = ".";
  name.append(path.filename().string()).append(".").append(std::to_string(::getpid()));
  name.append(".").append(std::to_string(counter++)).append(".tmp");
  return path.parent_path() / name;
}

void create_dirs(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw Error(ErrorCode::kIo, "cannot create cache folder " + dir.string() + ": " + error.message());
}

}  // namespace

std::string repo_folder_name(std::string_view repo_id) {
  std::string name = "models--";
  for (char c : repo_id) {
    if (c == '/') {
      name += "--";
    } else {
      name += c;
    }
  }
  return name;
}

RepoCache::RepoCache(fs::path cache_root, std::string_view repo_id)
    : cache_root_(std::move(cache_root)),
      repo_dir_(cache_root_ / repo_folder_name(repo_id)),
      folder_name_(repo_folder_name(repo_id)) {}

fs::path RepoCache::blob_path(std::string_view blob_id) const { return repo_dir_ / "blobs" / std::string(blob_id); }

fs::path RepoCache::incomplete_path(std::string_view blob_id) const {
  return repo_dir_ / "blobs" / (std::string(blob_id) + ".incomplete");
}

fs::path RepoCache::lock_path(std::string_view blob_id) const {
  return cache_root_ / ".locks" / folder_name_ / (std::string(blob_id) + ".lock");
}

fs::path RepoCache::snapshot_dir(std::string_view commit) const {
  return repo_dir_ / "snapshots" / std::string(commit);
}

fs::path RepoCache::snapshot_file(std::string_view commit, std::string_view repo_path) const {
  return snapshot_dir(commit) / std::string(repo_path);
}

std::optional<std::string> RepoCache::read_ref(std::string_view revision) const {
  std::ifstream in(repo_dir_ / "refs" / std::string(revision));
  if (!in) return std::nullopt;
  std::string commit;
  std::getline(in, commit);
  while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
  if (commit.empty()) return std::nullopt;
  return commit;
}

void RepoCache::write_ref(std::string_view revision, std::string_view commit) const {
  write_file_atomically(repo_dir_ / "refs" / std::string(revision), commit);
}

void RepoCache::link_snapshot_file(std::string_view commit, std::string_view repo_path,
                                   std::string_view blob_id) const {
  fs::path link = snapshot_file(commit, repo_path);
  create_dirs(link.parent_path());
  // Relative, like huggingface_hub's, so a cache moved or mounted elsewhere keeps working.
  std::string target = "../../";
  for (char c : repo_path) {
    if (c == '/') target += "../";
  }
  target += "blobs/" + std::string(blob_id);

  fs::path temporary = temporary_sibling(link);
  if (::symlink(target.c_str(), temporary.c_str()) != 0) throw_io("cannot create symlink", temporary, errno);
  if (::rename(temporary.c_str(), link.c_str()) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    throw_io("cannot move symlink into place at", link, error);
  }
}

void write_file_atomically(const fs::path& path, std::string_view content) {
  create_dirs(path.parent_path());
  fs::path temporary = temporary_sibling(path);
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_io("cannot create", temporary, errno);
  std::size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      throw_io("cannot write", temporary, error);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    throw_io("cannot flush", temporary, error);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    throw_io("cannot move into place", path, error);
  }
}

}  // namespace vlm::hub
