#include "vlm/hub/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "vlm/error.h"
#include "vlm/logging.h"

namespace vlm::hub {

FileLock::FileLock(const std::filesystem::path& path, std::string_view what) {
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  if (error)
    throw Error(ErrorCode::kIo, "cannot create lock folder " + path.parent_path().string() + ": " + error.message());
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error(ErrorCode::kIo,
                "cannot open lock file " + path.string() + ": " + std::generic_category().message(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
  if (errno != EWOULDBLOCK) {
    int code = errno;
    ::close(fd_);
    throw Error(ErrorCode::kIo, "cannot lock " + path.string() + ": " + std::generic_category().message(code));
  }
  log::info("waiting for another process that is downloading {} (lock {})", what, path.string());
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int code = errno;
    ::close(fd_);
    throw Error(ErrorCode::kIo, "cannot lock " + path.string() + ": " + std::generic_category().message(code));
  }
}

FileLock::~FileLock() {
  // Closing the descriptor releases the flock; the file stays, as huggingface_hub leaves its own.
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace vlm::hub
