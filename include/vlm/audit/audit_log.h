#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "vlm/audit/crypto.h"
#include "vlm/audit/merkle.h"

namespace vlm::audit {

struct AuditOptions {
  std::filesystem::path directory;         // holds audit.jsonl, rotated files and audit.lock
  std::filesystem::path key_file;          // HMAC key (--audit-key-file)
  std::filesystem::path signing_key_file;  // Ed25519 seed; empty: <key_file>.ed25519
  // Every checkpoint is also appended here; keep it on other storage so a truncated log is caught.
  std::filesystem::path checkpoint_copy;
  bool fsync_each_record = true;                          // off: fsync only at checkpoints, rotation and close
  std::uint64_t rotate_bytes = 64ULL << 20;               // 0: no size-based rotation
  std::chrono::seconds rotate_interval{0};                // 0: no time-based rotation
  std::uint64_t checkpoint_every_records = 1000;          // 0: none by count
  std::chrono::milliseconds checkpoint_interval{60'000};  // 0: none by time
};

struct ModelVersion {
  std::string name;
  std::string family;
  std::string version;
};

// What one request contributes to the log. The private texts are only ever HMACed, never written.
struct RequestEntry {
  std::string request_id;
  std::string client;    // API-key id, never the key; "anonymous" when there is none
  std::string endpoint;  // "/think", "/detect"
  std::vector<ModelVersion> models;
  std::string image_sha256;  // hex; empty when no image was decoded
  std::optional<std::string> question;
  std::optional<std::string> transcript;
  std::optional<std::string> final_answer;
  std::string outcome;  // "answered", "refused", "error:<code>"
};

// What start-up found; the owner logs it (this library does not log).
struct RecoveryReport {
  bool new_log = false;             // no previous record anywhere: the chain starts at genesis
  std::string resumed_file;         // file holding the record the chain resumed from
  std::uint64_t resumed_seq = 0;    // seq of that record
  std::uint64_t dropped_bytes = 0;  // torn last line removed (0: none)
  std::string dropped_sha256;       // of the removed bytes, also written into the recovery record
};

struct Appended {
  std::uint64_t seq = 0;
  std::string record_hash;  // the request's audit_id
};

// Append-only, hash-chained, Merkle-checkpointed audit log. Thread-safe: appends are serialised
// so concurrent requests produce one chain. One writer per directory (an flock on audit.lock).
class AuditLog {
 public:
  // Creates the directory and keys as needed, recovers a torn tail, starts the checkpoint timer.
  // Throws kInvalidArgument (key permissions), kIo (file system, a record that fails verification).
  explicit AuditLog(AuditOptions options);
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  ~AuditLog();

  // Durable on return when fsync_each_record is on. Throws kIo; after a failed write the log
  // refuses further appends rather than risk a chain with a hole in it.
  Appended append(const RequestEntry& entry);
  // False while a record could not be written: after a failed write (a full disk), until the log
  // can grow again, which this checks by reserving space at its end and giving it back. Readiness
  // follows it, so a load balancer stops sending /think requests that would all fail.
  bool writable();
  // Writes a checkpoint now unless nothing was appended since the last one.
  void checkpoint();
  // Final checkpoint, fsync, stop the timer, release the lock. Idempotent.
  void close();

  const RecoveryReport& recovery() const { return recovery_; }
  std::array<std::uint8_t, 32> public_key() const { return signing_key_.public_key(); }
  std::string text_hmac(std::string_view field, std::string_view text) const;
  std::filesystem::path active_path() const;

 private:
  struct Tail;
  void recover();
  Tail scan_file(const std::filesystem::path& path, bool active);
  void open_new_file(const std::string& prev_file);
  void write_line(nlohmann::json& record, bool sync);
  nlohmann::json new_record(std::string_view type);
  void checkpoint_locked();
  void maybe_rotate_locked();
  void rotate_locked();
  void fsync_directory() const;
  void timer_loop();

  AuditOptions options_;
  std::vector<std::uint8_t> hmac_key_;
  SigningKey signing_key_;
  RecoveryReport recovery_;

  mutable std::mutex mutex_;
  int lock_fd_ = -1;
  int fd_ = -1;
  bool broken_ = false;
  bool write_failed_ = false;  // the last write failed; cleared by a successful write or probe
  bool closed_ = false;
  std::uint64_t next_seq_ = 0;
  std::string last_hash_;
  std::uint64_t file_bytes_ = 0;
  std::uint64_t file_first_seq_ = 0;
  std::chrono::steady_clock::time_point file_opened_;
  std::uint64_t last_checkpoint_size_ = 0;  // tree size right after the last checkpoint record
  std::uint64_t records_since_checkpoint_ = 0;
  MerkleFrontier frontier_;

  std::condition_variable timer_wake_;
  bool stop_timer_ = false;
  std::thread timer_;
};

}  // namespace vlm::audit
