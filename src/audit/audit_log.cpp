#include "vlm/audit/audit_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "vlm/audit/key_file.h"
#include "vlm/audit/record.h"
#include "vlm/error.h"

namespace vlm::audit {
namespace fs = std::filesystem;
namespace {

// std::strerror is not thread-safe; the error category formats through strerror_r.
std::string errno_text() { return std::system_category().message(errno); }

[[noreturn]] void throw_io(const std::string& what) { throw Error(ErrorCode::kIo, what + ": " + errno_text()); }

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIo, "cannot open audit file " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("audit write failed");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

fs::path signing_key_path(const AuditOptions& options) {
  if (!options.signing_key_file.empty()) return options.signing_key_file;
  return fs::path(options.key_file.string() + ".ed25519");
}

std::vector<std::uint8_t> checked_hmac_key(const AuditOptions& options) {
  if (options.directory.empty()) throw Error(ErrorCode::kInvalidArgument, "audit directory is empty");
  if (options.key_file.empty()) throw Error(ErrorCode::kInvalidArgument, "--audit-key-file is required");
  return load_or_create_hmac_key(options.key_file);
}

// A crash while appending to the checkpoint copy leaves a line with no newline; the next append
// would glue a whole checkpoint onto it and the copy would no longer verify. That line was never
// acknowledged (its fsync had not returned), so it is dropped, as a torn tail of the log is.
void drop_torn_checkpoint_copy_tail(const fs::path& copy) {
  if (copy.empty() || !fs::exists(copy)) return;
  const std::string data = read_file(copy);
  if (data.empty() || data.back() == '\n') return;
  const auto keep = data.rfind('\n');
  const auto size = keep == std::string::npos ? 0 : keep + 1;
  if (::truncate(copy.c_str(), static_cast<off_t>(size)) != 0) {
    throw_io("cannot truncate torn tail of checkpoint copy " + copy.string());
  }
}

}  // namespace

struct AuditLog::Tail {
  bool has_records = false;
  std::uint64_t last_seq = 0;
  std::string last_hash;
  MerkleFrontier frontier;
  std::uint64_t complete_bytes = 0;  // up to and including the last newline
  std::uint64_t total_bytes = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t checkpoint_size = 0;  // tree size right after the last checkpoint seen (0: none)
  std::uint64_t records_since_checkpoint = 0;
};

AuditLog::AuditLog(AuditOptions options)
    : options_(std::move(options)),
      hmac_key_(checked_hmac_key(options_)),
      signing_key_(load_or_create_signing_key(signing_key_path(options_))) {
  std::error_code ec;
  // Records name clients and requests: a directory we create is for this user only.
  if (fs::create_directories(options_.directory, ec) && !ec) {
    fs::permissions(options_.directory, fs::perms::owner_all, fs::perm_options::replace, ec);
  }
  if (ec) {
    throw Error(ErrorCode::kIo, "cannot create audit directory " + options_.directory.string() + ": " + ec.message());
  }
  write_public_key(signing_key_path(options_).string() + ".pub", signing_key_.public_key());
  const auto lock_path = options_.directory / "audit.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) throw_io("cannot open " + lock_path.string());
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const std::string why = errno == EWOULDBLOCK ? "another process is writing this audit log" : errno_text();
    ::close(lock_fd_);
    throw Error(ErrorCode::kIo, "cannot lock " + lock_path.string() + ": " + why);
  }
  try {
    recover();
  } catch (...) {
    if (fd_ >= 0) ::close(fd_);
    ::close(lock_fd_);
    cleanse(hmac_key_.data(), hmac_key_.size());
    throw;
  }
  if (options_.checkpoint_interval.count() > 0 || options_.rotate_interval.count() > 0) {
    timer_ = std::thread([this] { timer_loop(); });
  }
}

AuditLog::~AuditLog() {
  try {
    close();
  } catch (...) {
    // A destructor cannot report; close() is called explicitly by owners that want the error.
  }
  cleanse(hmac_key_.data(), hmac_key_.size());
}

fs::path AuditLog::active_path() const { return options_.directory / kActiveFileName; }

std::string AuditLog::text_hmac(std::string_view field, std::string_view text) const {
  return audit::text_hmac(hmac_key_, field, text);
}

AuditLog::Tail AuditLog::scan_file(const fs::path& path, bool active) {
  const std::string data = read_file(path);
  Tail tail;
  tail.total_bytes = data.size();
  std::size_t pos = 0;
  std::uint64_t line_number = 0;
  while (pos < data.size()) {
    const std::size_t end = data.find('\n', pos);
    if (end == std::string::npos) break;  // torn tail: no newline, never acknowledged
    ++line_number;
    const std::string_view line(data.data() + pos, end - pos);
    std::string problem;
    auto record = open_record(line, problem);
    const auto where = [&] { return path.string() + " line " + std::to_string(line_number); };
    if (!record) {
      throw Error(ErrorCode::kIo, "audit record at " + where() + " fails verification (" + problem +
                                      "); refusing to append; inspect it with `vlmserve audit verify`");
    }
    const auto& r = *record;
    const auto seq = r.value("seq", std::uint64_t{0});
    const auto type = r.value("type", std::string());
    if (!tail.has_records) {
      if (type != kTypeFileStart) {
        throw Error(ErrorCode::kIo, "audit file " + path.string() + " does not begin with a file_start record");
      }
      std::vector<Digest> nodes;
      for (const auto& node : r.at("frontier")) nodes.push_back(digest_from_hex(node.get<std::string>()));
      tail.frontier = MerkleFrontier(r.at("tree_size").get<std::uint64_t>(), std::move(nodes));
      tail.first_seq = seq;
    } else if (seq != tail.last_seq + 1 || r.value("prev_hash", std::string()) != tail.last_hash) {
      throw Error(ErrorCode::kIo, "audit record at " + where() + " does not continue the chain (seq " +
                                      std::to_string(seq) + " after " + std::to_string(tail.last_seq) +
                                      "); refusing to append");
    }
    tail.frontier.append(line);
    tail.has_records = true;
    tail.last_seq = seq;
    tail.last_hash = r.at("record_hash").get<std::string>();
    if (type == kTypeCheckpoint) {
      tail.checkpoint_size = tail.frontier.size();
      tail.records_since_checkpoint = 0;
    } else {
      ++tail.records_since_checkpoint;
    }
    pos = end + 1;
    tail.complete_bytes = pos;
  }
  if (!active && tail.complete_bytes != tail.total_bytes) {
    throw Error(ErrorCode::kIo, "rotated audit file " + path.string() +
                                    " ends in a partial line; it was fsynced "
                                    "before rotation, so it has been altered");
  }
  return tail;
}

void AuditLog::recover() {
  drop_torn_checkpoint_copy_tail(options_.checkpoint_copy);
  std::vector<std::pair<std::string, fs::path>> rotated;
  for (const auto& item : fs::directory_iterator(options_.directory)) {
    const auto name = item.path().filename().string();
    if (is_rotated_file_name(name)) rotated.emplace_back(name, item.path());
  }
  std::sort(rotated.begin(), rotated.end());

  const fs::path active = active_path();
  Tail tail;
  std::string tail_file;
  bool active_usable = false;
  if (fs::exists(active)) {
    tail = scan_file(active, true);
    tail_file = kActiveFileName;
    if (tail.complete_bytes != tail.total_bytes) {
      const std::string data = read_file(active);
      recovery_.dropped_bytes = tail.total_bytes - tail.complete_bytes;
      recovery_.dropped_sha256 = to_hex(sha256(std::string_view(data).substr(tail.complete_bytes)));
      if (::truncate(active.c_str(), static_cast<off_t>(tail.complete_bytes)) != 0) {
        throw_io("cannot truncate torn tail of " + active.string());
      }
    }
    active_usable = tail.has_records;
  }
  if (!active_usable && !rotated.empty()) {
    tail = scan_file(rotated.back().second, false);
    tail_file = rotated.back().first;
  }

  if (tail.has_records) {
    next_seq_ = tail.last_seq + 1;
    last_hash_ = tail.last_hash;
    frontier_ = tail.frontier;
    last_checkpoint_size_ = tail.checkpoint_size;
    records_since_checkpoint_ = tail.records_since_checkpoint;
    recovery_.resumed_file = tail_file;
    recovery_.resumed_seq = tail.last_seq;
  } else {
    recovery_.new_log = true;
    last_hash_ = std::string(kGenesisHash);
  }

  if (active_usable) {
    fd_ = ::open(active.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) throw_io("cannot open " + active.string());
    file_bytes_ = tail.complete_bytes;
    file_first_seq_ = tail.first_seq;
    file_opened_ = std::chrono::steady_clock::now();
  } else {
    // Either a fresh log, or the crash came between rotating the old file away and finishing the
    // new file's first record: start the new file from the newest rotated one.
    open_new_file(recovery_.new_log ? std::string() : tail_file);
  }
  if (recovery_.dropped_bytes > 0) {
    auto record = new_record(kTypeRecovery);
    record["dropped_bytes"] = recovery_.dropped_bytes;
    record["dropped_sha256"] = recovery_.dropped_sha256;
    write_line(record, true);
  }
}

void AuditLog::open_new_file(const std::string& prev_file) {
  const fs::path active = active_path();
  fd_ = ::open(active.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) throw_io("cannot create " + active.string());
  file_bytes_ = 0;
  file_first_seq_ = next_seq_;
  file_opened_ = std::chrono::steady_clock::now();
  auto record = new_record(kTypeFileStart);
  record["prev_file"] = prev_file.empty() ? nlohmann::json(nullptr) : nlohmann::json(prev_file);
  record["tree_size"] = frontier_.size();
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& node : frontier_.nodes()) nodes.push_back(to_hex(node));
  record["frontier"] = std::move(nodes);
  write_line(record, true);
  fsync_directory();
}

nlohmann::json AuditLog::new_record(std::string_view type) {
  return nlohmann::json{{"v", kRecordVersion},
                        {"type", type},
                        {"seq", next_seq_},
                        {"time", format_time(std::chrono::system_clock::now())},
                        {"prev_hash", last_hash_}};
}

void AuditLog::write_line(nlohmann::json& record, bool sync) {
  if (broken_) throw Error(ErrorCode::kIo, "audit log is unusable after an earlier write failure");
  std::string line = seal_record(record);
  const std::size_t leaf_size = line.size();
  line.push_back('\n');
  try {
    write_all(fd_, line);
    if (sync && ::fsync(fd_) != 0) throw_io("audit fsync failed");
  } catch (...) {
    write_failed_ = true;
    // Take the partial line back so the chain on disk stays whole; if even that fails, stop.
    if (::ftruncate(fd_, static_cast<off_t>(file_bytes_)) != 0) broken_ = true;
    throw;
  }
  write_failed_ = false;
  file_bytes_ += line.size();
  frontier_.append(std::string_view(line.data(), leaf_size));
  last_hash_ = record["record_hash"].get<std::string>();
  ++next_seq_;
}

bool AuditLog::writable() {
  std::lock_guard lock(mutex_);
  if (broken_ || closed_ || fd_ < 0) return false;
  if (!write_failed_) return true;
  // Room for a few records: the probe must fail where the next record would.
  constexpr off_t kProbeBytes = 64 * 1024;
  const int reserved = ::posix_fallocate(fd_, static_cast<off_t>(file_bytes_), kProbeBytes);
  if (::ftruncate(fd_, static_cast<off_t>(file_bytes_)) != 0) {
    broken_ = true;
    return false;
  }
  if (reserved != 0) return false;
  write_failed_ = false;
  return true;
}

Appended AuditLog::append(const RequestEntry& entry) {
  std::lock_guard lock(mutex_);
  if (closed_) throw Error(ErrorCode::kIo, "audit log is closed");
  auto record = new_record(kTypeRequest);
  record["request_id"] = entry.request_id;
  record["client"] = entry.client;
  record["endpoint"] = entry.endpoint;
  nlohmann::json models = nlohmann::json::array();
  for (const auto& model : entry.models) {
    models.push_back({{"name", model.name}, {"family", model.family}, {"version", model.version}});
  }
  record["models"] = std::move(models);
  record["image_sha256"] = entry.image_sha256;
  const auto keyed = [&](std::string_view field, const std::optional<std::string>& text) {
    return text ? nlohmann::json(audit::text_hmac(hmac_key_, field, *text)) : nlohmann::json(nullptr);
  };
  record["question_hmac"] = keyed("question", entry.question);
  record["transcript_hmac"] = keyed("transcript", entry.transcript);
  record["final_hmac"] = keyed("final", entry.final_answer);
  record["outcome"] = entry.outcome;
  const std::uint64_t seq = next_seq_;
  write_line(record, options_.fsync_each_record);
  Appended appended{seq, last_hash_};
  ++records_since_checkpoint_;
  if (options_.checkpoint_every_records > 0 && records_since_checkpoint_ >= options_.checkpoint_every_records) {
    checkpoint_locked();
  }
  maybe_rotate_locked();
  return appended;
}

void AuditLog::checkpoint() {
  std::lock_guard lock(mutex_);
  if (!closed_) checkpoint_locked();
}

void AuditLog::checkpoint_locked() {
  if (frontier_.size() == last_checkpoint_size_) return;  // nothing new since the last one
  auto record = new_record(kTypeCheckpoint);
  const std::string root = to_hex(frontier_.root());
  const std::string time = record["time"].get<std::string>();
  const auto signature = signing_key_.sign(checkpoint_statement(frontier_.size(), root, last_hash_, time));
  record["tree_size"] = frontier_.size();
  record["merkle_root"] = root;
  record["public_key"] = to_hex(signing_key_.public_key());
  record["signature"] = to_hex(signature);
  write_line(record, true);
  last_checkpoint_size_ = frontier_.size();
  records_since_checkpoint_ = 0;
  if (!options_.checkpoint_copy.empty()) {
    const int copy = ::open(options_.checkpoint_copy.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (copy < 0) throw_io("cannot open checkpoint copy " + options_.checkpoint_copy.string());
    try {
      write_all(copy, canonical_json(record) + "\n");
      if (::fsync(copy) != 0) throw_io("cannot fsync checkpoint copy");
    } catch (...) {
      ::close(copy);
      throw;
    }
    ::close(copy);
  }
}

void AuditLog::maybe_rotate_locked() {
  const bool by_size = options_.rotate_bytes > 0 && file_bytes_ >= options_.rotate_bytes;
  const bool by_time = options_.rotate_interval.count() > 0 &&
                       std::chrono::steady_clock::now() - file_opened_ >= options_.rotate_interval &&
                       next_seq_ > file_first_seq_ + 1;  // never rotate a file holding only its header
  if (by_size || by_time) rotate_locked();
}

void AuditLog::rotate_locked() {
  if (::fsync(fd_) != 0) throw_io("audit fsync before rotation failed");
  ::close(fd_);
  fd_ = -1;
  const std::string name = rotated_file_name(file_first_seq_);
  const fs::path target = options_.directory / name;
  if (fs::exists(target)) {
    broken_ = true;
    throw Error(ErrorCode::kIo, "cannot rotate audit log: " + target.string() + " already exists");
  }
  if (::rename(active_path().c_str(), target.c_str()) != 0) {
    broken_ = true;
    throw_io("cannot rename " + active_path().string() + " to " + target.string());
  }
  fsync_directory();
  open_new_file(name);
}

void AuditLog::fsync_directory() const {
  const int dir = ::open(options_.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) throw_io("cannot open audit directory " + options_.directory.string());
  const int rc = ::fsync(dir);
  ::close(dir);
  if (rc != 0) throw_io("cannot fsync audit directory " + options_.directory.string());
}

void AuditLog::timer_loop() {
  using Clock = std::chrono::steady_clock;
  auto next_checkpoint = Clock::now() + options_.checkpoint_interval;
  std::unique_lock lock(mutex_);
  while (!stop_timer_) {
    auto wake = Clock::now() + std::chrono::seconds(1);
    if (options_.checkpoint_interval.count() > 0) wake = std::min(wake, next_checkpoint);
    timer_wake_.wait_until(lock, wake, [this] { return stop_timer_; });
    if (stop_timer_ || broken_) break;
    try {
      if (options_.checkpoint_interval.count() > 0 && Clock::now() >= next_checkpoint) {
        checkpoint_locked();
        next_checkpoint = Clock::now() + options_.checkpoint_interval;
      }
      if (options_.rotate_interval.count() > 0) maybe_rotate_locked();
    } catch (const Error&) {
      // The next append reports the failure to its request; the timer must not kill the process.
    }
  }
}

void AuditLog::close() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    stop_timer_ = true;
  }
  timer_wake_.notify_all();
  if (timer_.joinable()) timer_.join();
  std::lock_guard lock(mutex_);
  closed_ = true;
  std::optional<Error> failure;
  try {
    if (!broken_ && fd_ >= 0) checkpoint_locked();
  } catch (const Error& error) {
    failure = error;
  }
  if (fd_ >= 0) {
    if (::fsync(fd_) != 0 && !failure) failure = Error(ErrorCode::kIo, "audit fsync at close failed: " + errno_text());
    ::close(fd_);
    fd_ = -1;
  }
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
  if (failure) throw *failure;
}

}  // namespace vlm::audit
