#include "vlm/audit/record.h"

#include <ctime>

#include <fmt/format.h>

#include "vlm/error.h"

namespace vlm::audit {
namespace {

void reject_floats(const nlohmann::json& value) {
  if (value.is_number_float()) {
    throw Error(ErrorCode::kInvalidArgument, "audit records hold integers only, got " + value.dump());
  }
  if (value.is_structured()) {
    for (const auto& item : value) reject_floats(item);
  }
}

}  // namespace

std::string canonical_json(const nlohmann::json& value) {
  reject_floats(value);
  // nlohmann::json keeps object keys in a std::map, so dump() already sorts them bytewise.
  return value.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

std::string seal_record(nlohmann::json& record) {
  record.erase("record_hash");
  const std::string body = canonical_json(record);
  record["record_hash"] = to_hex(sha256(body));
  return canonical_json(record);
}

std::optional<nlohmann::json> open_record(std::string_view line, std::string& problem) {
  nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
  if (record.is_discarded()) {
    problem = "not valid JSON";
    return std::nullopt;
  }
  if (!record.is_object()) {
    problem = "not a JSON object";
    return std::nullopt;
  }
  const auto hash = record.find("record_hash");
  if (hash == record.end() || !hash->is_string()) {
    problem = "record_hash is missing or not a string";
    return std::nullopt;
  }
  try {
    if (canonical_json(record) != line) {
      problem = "record is not in canonical form (bytes were altered)";
      return std::nullopt;
    }
  } catch (const Error& error) {
    problem = error.what();
    return std::nullopt;
  }
  const std::string stored = hash->get<std::string>();
  nlohmann::json body = record;
  body.erase("record_hash");
  const std::string computed = to_hex(sha256(canonical_json(body)));
  if (stored != computed) {
    problem = "record_hash " + stored.substr(0, 16) + "... does not match the record (computed " +
              computed.substr(0, 16) + "...)";
    return std::nullopt;
  }
  return record;
}

std::string text_hmac(std::span<const std::uint8_t> key, std::string_view field, std::string_view text) {
  std::string message = "vlmserve-audit/v1/";
  message.append(field);
  message.push_back('\n');
  message.append(text);
  const auto digest = hmac_sha256(key, message);
  cleanse(message.data(), message.size());
  return to_hex(digest);
}

std::string checkpoint_statement(std::uint64_t tree_size, std::string_view merkle_root, std::string_view prev_hash,
                                 std::string_view time) {
  return canonical_json({{"log", "vlmserve-audit/v1"},
                         {"merkle_root", merkle_root},
                         {"prev_hash", prev_hash},
                         {"time", time},
                         {"tree_size", tree_size}});
}

std::string format_time(std::chrono::system_clock::time_point time) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                     utc.tm_hour, utc.tm_min, utc.tm_sec, ms % 1000);
}

std::string rotated_file_name(std::uint64_t first_seq) { return fmt::format("audit-{:012}.jsonl", first_seq); }

bool is_rotated_file_name(std::string_view name) {
  constexpr std::string_view kPrefix = "audit-";
  constexpr std::string_view kSuffix = ".jsonl";
  if (name.size() != kPrefix.size() + 12 + kSuffix.size()) return false;
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return false;
  for (char c : name.substr(kPrefix.size(), 12)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace vlm::audit
