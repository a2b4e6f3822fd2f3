#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vlm::audit {

struct VerifyOptions {
  // Checkpoints must be signed by this key; without it signatures are checked against the key the
  // log itself names, which proves integrity only against someone who cannot write the log.
  std::optional<std::array<std::uint8_t, 32>> trusted_public_key;
  // Checkpoint copies kept elsewhere (AuditOptions::checkpoint_copy): each must match the log, and
  // the log must reach every one of them, which is what catches a truncated tail.
  std::vector<std::filesystem::path> checkpoint_files;
  // Accept a first file that does not start at genesis (older files archived away).
  bool allow_partial = false;
};

struct VerifyFailure {
  std::string file;        // as given
  std::uint64_t line = 0;  // 1-based; 0 when the problem is not one line
  std::optional<std::uint64_t> seq;
  std::string message;
};

struct VerifyReport {
  bool ok = false;
  std::uint64_t files = 0;
  std::uint64_t records = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t checkpoints = 0;           // in-log checkpoints whose root and signature matched
  std::uint64_t external_checkpoints = 0;  // copies from checkpoint_files that matched
  std::string head_hash;                   // record_hash of the last record
  std::string signer;                      // hex public key that signed the checkpoints
  std::optional<VerifyFailure> failure;    // the first bad record
  std::vector<std::string> notes;          // things that are not failures but limit what was proven
};

// Files may be given in any order and may include directories (their audit-*.jsonl and audit.jsonl);
// they are ordered by the seq of their first record.
VerifyReport verify_log(const std::vector<std::filesystem::path>& inputs, const VerifyOptions& options);

// The files `verify_log` would read, in chain order (throws kNotFound / kIo).
std::vector<std::filesystem::path> expand_audit_inputs(const std::vector<std::filesystem::path>& inputs);

// Every record whose request_id or record_hash equals `id`, with the file and line it came from.
struct FoundRecord {
  std::string file;
  std::uint64_t line = 0;
  nlohmann::json record;
};
std::vector<FoundRecord> find_records(const std::vector<std::filesystem::path>& inputs, const std::string& id);

}  // namespace vlm::audit
