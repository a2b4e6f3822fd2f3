#include "vlm/hub/blob_download.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "vlm/error.h"
#include "vlm/hub/digest.h"
#include "vlm/hub/file_lock.h"
#include "vlm/logging.h"

namespace vlm::hub {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kReadChunk = 1 << 20;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string human_size(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, units[unit]);
}

bool is_disk_full(int error) { return error == ENOSPC || error == EDQUOT || error == EFBIG; }

[[noreturn]] void throw_write_error(int error, const fs::path& path, const RepoFile& file, std::uint64_t at) {
  std::string message = "cannot write " + file.path + " to " + path.string() + " at byte " + std::to_string(at) + ": " +
                        std::generic_category().message(error);
  if (is_disk_full(error)) {
    message = "disk full: " + message + "; free space or point VLM_CACHE at a larger disk (" + human_size(file.size) +
              " needed for this file; the partial download is kept and resumes)";
  }
  throw Error(ErrorCode::kIo, message);
}

BlobHasher hasher_for(const RepoFile& file) {
  return file.sha256.empty() ? BlobHasher::git_blob_sha1(file.size) : BlobHasher::sha256();
}

// A blob already in place is trusted when its size matches, as huggingface_hub trusts it: it was
// verified before it was renamed there.
bool blob_is_present(const fs::path& blob, const RepoFile& file) {
  std::error_code error;
  if (!fs::is_regular_file(blob, error)) return false;
  std::uintmax_t size = fs::file_size(blob, error);
  if (!error && size == file.size) return true;
  log::warn("cached blob {} is {} bytes, expected {}; fetching it again", blob.string(), size, file.size);
  fs::remove(blob, error);
  return false;
}

// "bytes 100-199/200" -> 100; npos when malformed.
std::uint64_t content_range_start(const std::string& header) {
  if (header.rfind("bytes ", 0) != 0) return std::string::npos;
  try {
    return std::stoull(header.substr(6));
  } catch (const std::exception&) {
    return std::string::npos;
  }
}

void check_linked_metadata(const HttpResponse& hub_answer, const RepoFile& file) {
  std::string linked = normalize_etag(hub_answer.header("x-linked-etag"));
  if (!linked.empty() && !file.sha256.empty() && linked != file.sha256) {
    throw Error(ErrorCode::kBadCheckpoint, file.path + ": the hub's X-Linked-Etag " + linked +
                                               " disagrees with its revision metadata " + file.sha256);
  }
  std::string linked_size = hub_answer.header("x-linked-size");
  if (!linked_size.empty() && linked_size != std::to_string(file.size)) {
    throw Error(ErrorCode::kBadCheckpoint, file.path + ": the hub's X-Linked-Size " + linked_size +
                                               " disagrees with its revision metadata " + std::to_string(file.size));
  }
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// One attempt: continue `<id>.incomplete` from its current length, then verify and rename.
std::uint64_t transfer(const HubTransport& transport, const RepoCache& cache, const RepoFile& file,
                       const std::string& url) {
  const std::string& blob_id = file.cache_blob_id();
  fs::path partial = cache.incomplete_path(blob_id);
  Fd fd(::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0)
    throw Error(ErrorCode::kIo, "cannot open " + partial.string() + ": " + std::generic_category().message(errno));

  std::uint64_t offset = static_cast<std::uint64_t>(::lseek(fd.get(), 0, SEEK_END));
  if (offset > file.size && ::ftruncate(fd.get(), 0) == 0) offset = 0;
  BlobHasher hasher = hasher_for(file);
  std::vector<char> buffer(kReadChunk);
  for (std::uint64_t done = 0; done < offset;) {
    ssize_t n =
        ::pread(fd.get(), buffer.data(), std::min<std::uint64_t>(kReadChunk, offset - done), static_cast<off_t>(done));
    if (n <= 0)
      throw Error(ErrorCode::kIo,
                  "cannot read back " + partial.string() + ": " + std::generic_category().message(errno));
    hasher.update(buffer.data(), static_cast<std::size_t>(n));
    done += static_cast<std::uint64_t>(n);
  }
  if (offset > 0) log::info("resuming {} at {} of {}", file.path, human_size(offset), human_size(file.size));

  std::uint64_t received = 0;
  int write_errno = 0;
  bool too_long = false;
  std::string refused;
  auto accept = [&](const HttpResponse& response) {
    if (response.status == 206) {
      if (content_range_start(response.header("content-range")) != offset) {
        refused = "answered a Range request from byte " + std::to_string(offset) + " with Content-Range '" +
                  response.header("content-range") + "'";
        return false;
      }
      return true;
    }
    if (response.status == 200) {
      if (offset > 0) {  // the server ignored Range: start over
        if (::ftruncate(fd.get(), 0) != 0) {
          write_errno = errno;
          return false;
        }
        offset = 0;
        hasher = hasher_for(file);
      }
      return true;
    }
    refused = "answered " + std::to_string(response.status);
    return false;
  };
  auto sink = [&](const char* data, std::size_t size) {
    if (offset + received + size > file.size) {
      too_long = true;
      return false;
    }
    for (std::size_t written = 0; written < size;) {
      ssize_t n = ::pwrite(fd.get(), data + written, size - written, static_cast<off_t>(offset + received + written));
      if (n < 0) {
        if (errno == EINTR) continue;
        write_errno = errno;
        return false;
      }
      written += static_cast<std::size_t>(n);
    }
    hasher.update(data, size);
    received += size;
    return true;
  };

  HttpResponse hub_answer = transport.download(url, offset, file.path, accept, sink);
  if (write_errno != 0) throw_write_error(write_errno, partial, file, offset + received);
  if (hub_answer.status == 416) {
    if (offset != file.size) {
      // The server refuses our offset although the file is incomplete: drop the partial copy.
      if (::ftruncate(fd.get(), 0) != 0) throw_write_error(errno, partial, file, 0);
      throw TransientError(file.path + ": the server refused to resume at byte " + std::to_string(offset));
    }
  } else {
    check_linked_metadata(hub_answer, file);
  }
  if (!refused.empty()) throw Error(ErrorCode::kUnavailable, file.path + ": the server " + refused);
  std::uint64_t total = offset + received;
  if (too_long) {
    ::close(fd.release());
    fs::remove(partial);
    throw Error(ErrorCode::kBadCheckpoint, file.path + ": the server sent more than the " + std::to_string(file.size) +
                                               " bytes the hub's metadata promises; download discarded");
  }
  if (total < file.size) {
    throw TransientError(file.path + ": the connection ended after " + std::to_string(total) + " of " +
                         std::to_string(file.size) + " bytes");
  }

  std::string actual = hasher.hex_digest();
  const std::string& expected = file.sha256.empty() ? file.blob_id : file.sha256;
  if (actual != expected) {
    ::close(fd.release());
    fs::remove(partial);
    throw Error(ErrorCode::kBadCheckpoint,
                file.path + " from " + url + " failed verification: " + std::string(hasher.algorithm()) + " is " +
                    actual + ", the hub's metadata says " + expected + " (" + std::to_string(total) +
                    " bytes); the download was discarded and nothing was cached");
  }
  if (::fsync(fd.get()) != 0) throw_write_error(errno, partial, file, total);
  ::close(fd.release());
  fs::path blob = cache.blob_path(blob_id);
  if (::rename(partial.c_str(), blob.c_str()) != 0) {
    throw Error(ErrorCode::kIo,
                "cannot move " + partial.string() + " into place: " + std::generic_category().message(errno));
  }
  fsync_dir(blob.parent_path());
  log::info("{}: {} verified ({} {})", file.path, human_size(file.size), hasher.algorithm(), actual);
  return received;
}

}  // namespace

std::uint64_t ensure_blob(const HubTransport& transport, const RepoCache& cache, const RepoFile& file,
                          const std::string& url, const HubOptions& options) {
  const std::string& blob_id = file.cache_blob_id();
  if (!is_sha256_hex(blob_id) && !is_sha1_hex(blob_id)) {
    throw Error(ErrorCode::kInternal, file.path + " has no verifiable blob id ('" + blob_id + "')");
  }
  fs::path blob = cache.blob_path(blob_id);
  if (blob_is_present(blob, file)) return 0;

  FileLock lock(cache.lock_path(blob_id), file.path);
  if (blob_is_present(blob, file)) return 0;  // another process fetched it while we waited

  std::error_code error;
  fs::create_directories(blob.parent_path(), error);
  if (error) throw Error(ErrorCode::kIo, "cannot create " + blob.parent_path().string() + ": " + error.message());
  std::uintmax_t partial_size = fs::file_size(cache.incomplete_path(blob_id), error);
  std::uint64_t have = error ? 0 : std::min<std::uint64_t>(partial_size, file.size);
  fs::space_info space = fs::space(blob.parent_path(), error);
  if (!error && space.available < file.size - have) {
    throw Error(ErrorCode::kIo, "disk full: " + file.path + " needs " + human_size(file.size - have) + " more but " +
                                    blob.parent_path().string() + " has " + human_size(space.available) +
                                    " free; free space or point VLM_CACHE at a larger disk");
  }

  log::info("downloading {} ({})", file.path, human_size(file.size));
  for (int attempt = 0;; ++attempt) {
    try {
      return transfer(transport, cache, file, url);
    } catch (const TransientError& failure) {
      if (attempt >= options.max_retries) {
        throw Error(ErrorCode::kUnavailable,
                    std::string(failure.what()) + " (gave up after " + std::to_string(attempt + 1) +
                        " attempts; the partial download is kept and the next pull resumes it)");
      }
      auto pause = std::chrono::milliseconds(250) * (1 << std::min(attempt, 5));
      log::warn("{}; retrying in {} ms", failure.what(), pause.count());
      std::this_thread::sleep_for(pause);
    }
  }
}

}  // namespace vlm::hub
