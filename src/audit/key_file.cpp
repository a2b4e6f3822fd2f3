#include "vlm/audit/key_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include "vlm/error.h"

namespace vlm::audit {
namespace {

constexpr std::size_t kKeyBytes = 32;

// std::strerror is not thread-safe; the error category formats through strerror_r.
std::string errno_text() { return std::system_category().message(errno); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads at most `limit` bytes; a key file is tiny, so anything longer is malformed.
std::string read_all(int fd, const std::filesystem::path& path, std::size_t limit) {
  std::string out;
  char buffer[256];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorCode::kIo, "cannot read key file " + path.string() + ": " + errno_text());
    }
    if (n == 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
    if (out.size() > limit) {
      cleanse(out.data(), out.size());
      throw Error(ErrorCode::kInvalidArgument,
                  "key file " + path.string() + " is longer than " + std::to_string(limit) + " bytes");
    }
  }
  cleanse(buffer, sizeof buffer);
  return out;
}

std::vector<std::uint8_t> parse_key_text(std::string text, const std::filesystem::path& path) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.size() != kKeyBytes * 2) {
    const auto size = text.size();
    cleanse(text.data(), text.size());
    throw Error(ErrorCode::kInvalidArgument, "key file " + path.string() + " holds " + std::to_string(size) +
                                                 " characters, expected " + std::to_string(kKeyBytes * 2) +
                                                 " hex digits");
  }
  try {
    auto key = from_hex(text);
    cleanse(text.data(), text.size());
    return key;
  } catch (const Error&) {
    cleanse(text.data(), text.size());
    throw Error(ErrorCode::kInvalidArgument, "key file " + path.string() + " is not hex");
  }
}

void check_private_file(int fd, const std::filesystem::path& path) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    throw Error(ErrorCode::kIo, "cannot stat key file " + path.string() + ": " + errno_text());
  }
  if (!S_ISREG(info.st_mode)) {
    throw Error(ErrorCode::kInvalidArgument, "key file " + path.string() + " is not a regular file");
  }
  if (info.st_uid != ::geteuid()) {
    throw Error(ErrorCode::kInvalidArgument, "key file " + path.string() + " is owned by uid " +
                                                 std::to_string(info.st_uid) + ", not by this user (uid " +
                                                 std::to_string(::geteuid()) + ")");
  }
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
    throw Error(ErrorCode::kInvalidArgument, "key file " + path.string() + " has mode " + mode +
                                                 "; it must not be accessible to group or others (chmod 600)");
  }
}

std::vector<std::uint8_t> read_private_key(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    const auto code = errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo;
    throw Error(code, "cannot open key file " + path.string() + ": " + errno_text());
  }
  check_private_file(fd.get(), path);
  return parse_key_text(read_all(fd.get(), path, 4 * kKeyBytes), path);
}

// Returns false when the file already exists (another process may have won the race).
bool create_private_key(const std::filesystem::path& path, std::span<const std::uint8_t> key) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) {
    if (errno == EEXIST) return false;
    throw Error(ErrorCode::kIo, "cannot create key file " + path.string() + ": " + errno_text());
  }
  // The umask cannot widen 0600, but an inherited ACL default could; state the mode explicitly.
  if (::fchmod(fd.get(), 0600) != 0) {
    throw Error(ErrorCode::kIo, "cannot chmod key file " + path.string() + ": " + errno_text());
  }
  std::string text = to_hex(key) + "\n";
  const ssize_t written = ::write(fd.get(), text.data(), text.size());
  cleanse(text.data(), text.size());
  if (written != static_cast<ssize_t>(kKeyBytes * 2 + 1) || ::fsync(fd.get()) != 0) {
    throw Error(ErrorCode::kIo, "cannot write key file " + path.string() + ": " + errno_text());
  }
  return true;
}

std::vector<std::uint8_t> load_or_create(const std::filesystem::path& path, std::vector<std::uint8_t> fresh) {
  const bool created = create_private_key(path, fresh);
  if (created) return fresh;
  cleanse(fresh.data(), fresh.size());
  return read_private_key(path);
}

}  // namespace

std::vector<std::uint8_t> load_or_create_hmac_key(const std::filesystem::path& path) {
  return load_or_create(path, random_bytes(kKeyBytes));
}

SigningKey load_or_create_signing_key(const std::filesystem::path& path) {
  auto seed = load_or_create(path, SigningKey::generate().seed());
  auto key = SigningKey::from_seed(seed);
  cleanse(seed.data(), seed.size());
  return key;
}

std::vector<std::uint8_t> load_key_file(const std::filesystem::path& path) { return read_private_key(path); }

std::array<std::uint8_t, 32> load_public_key(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const auto code = errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo;
    throw Error(code, "cannot open public key file " + path.string() + ": " + errno_text());
  }
  const auto bytes = parse_key_text(read_all(fd.get(), path, 4 * kKeyBytes), path);
  std::array<std::uint8_t, 32> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

void write_public_key(const std::filesystem::path& path, std::span<const std::uint8_t> public_key) {
  const auto tmp = path.string() + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    throw Error(ErrorCode::kIo, "cannot create public key file " + tmp + ": " + errno_text());
  }
  const std::string text = to_hex(public_key) + "\n";
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) || ::fsync(fd.get()) != 0 ||
      ::rename(tmp.c_str(), path.c_str()) != 0) {
    throw Error(ErrorCode::kIo, "cannot write public key file " + path.string() + ": " + errno_text());
  }
}

}  // namespace vlm::audit
