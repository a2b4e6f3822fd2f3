#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "vlm/audit/crypto.h"

// The on-disk record format. One JSON object per line, serialised canonically (keys sorted, no
// whitespace, non-ASCII escaped, integers only) so the bytes on disk are exactly the bytes hashed.
namespace vlm::audit {

inline constexpr int kRecordVersion = 1;
inline constexpr std::string_view kGenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";
inline constexpr std::string_view kActiveFileName = "audit.jsonl";

// Record types: the first record of every file is a file_start; request records carry one
// /think or /detect each; checkpoints sign the Merkle root of everything before them; a recovery
// record notes bytes dropped from a torn last line at start-up.
inline constexpr std::string_view kTypeFileStart = "file_start";
inline constexpr std::string_view kTypeRequest = "request";
inline constexpr std::string_view kTypeCheckpoint = "checkpoint";
inline constexpr std::string_view kTypeRecovery = "recovery";

// Canonical bytes of a JSON value; throws kInvalidArgument for floating-point numbers, whose text
// form is not canonical across implementations.
std::string canonical_json(const nlohmann::json& value);

// Fills "record_hash" = SHA-256(canonical record without record_hash) and returns the line to write.
std::string seal_record(nlohmann::json& record);

// Parses one line and checks that it is a canonical JSON object whose record_hash matches.
// On failure returns nullopt and sets `problem` to a message that names what was wrong.
std::optional<nlohmann::json> open_record(std::string_view line, std::string& problem);

// HMAC-SHA256 over a domain-separated message ("vlmserve-audit/v1/<field>\n" + text) so the digest of
// a question can never be replayed as the digest of a transcript. `field` is question, transcript or
// final. Hex, as stored in the record's "<field>_hmac".
std::string text_hmac(std::span<const std::uint8_t> key, std::string_view field, std::string_view text);

// The statement an Ed25519 checkpoint signature covers: the canonical JSON of
// {"log":"vlmserve-audit/v1","merkle_root","prev_hash","time","tree_size"}.
std::string checkpoint_statement(std::uint64_t tree_size, std::string_view merkle_root, std::string_view prev_hash,
                                 std::string_view time);

// RFC 3339 UTC with milliseconds: 2026-11-21T05:30:00.123Z.
std::string format_time(std::chrono::system_clock::time_point time);

// Name a rotated file gets: audit-<seq of its first record, 12 digits>.jsonl.
std::string rotated_file_name(std::uint64_t first_seq);
bool is_rotated_file_name(std::string_view name);

}  // namespace vlm::audit
