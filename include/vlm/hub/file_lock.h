#pragma once

#include <filesystem>
#include <string_view>

namespace vlm::hub {

// An exclusive flock(2) on a lock file, held for the object's lifetime. It is the lock
// huggingface_hub's filelock takes on the same path, so vlmserve and Python clients sharing a cache
// never write the same blob at once.
class FileLock {
 public:
  // `what` names the guarded thing in the message logged while waiting for another process.
  FileLock(const std::filesystem::path& path, std::string_view what);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace vlm::hub
