#include "audit_settings.h"

#include <cmath>
#include <string>

#include "vlm/error.h"

namespace vlm::cli {

std::optional<audit::AuditOptions> audit_options(const Settings& settings) {
  if (settings.get("audit-dir").empty()) return std::nullopt;
  audit::AuditOptions options;
  options.directory = settings.get("audit-dir");
  options.key_file = settings.get("audit-key-file");
  if (options.key_file.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "--audit-dir needs --audit-key-file (it is created if absent)");
  }
  options.signing_key_file = settings.get("audit-signing-key-file");
  options.checkpoint_copy = settings.get("audit-checkpoint-copy");
  options.fsync_each_record = !settings.get_bool("audit-no-fsync");
  const double rotate_mb = settings.get_float("audit-rotate-mb");
  if (!(rotate_mb >= 0 && rotate_mb < 1e6)) {
    throw Error(ErrorCode::kInvalidArgument, "--audit-rotate-mb must be in [0, 1e6), got " + std::to_string(rotate_mb));
  }
  options.rotate_bytes = static_cast<std::uint64_t>(std::llround(rotate_mb * 1024 * 1024));
  const long every = settings.get_int("audit-checkpoint-records");
  if (every < 0) {
    throw Error(ErrorCode::kInvalidArgument, "--audit-checkpoint-records must be >= 0, got " + std::to_string(every));
  }
  options.checkpoint_every_records = static_cast<std::uint64_t>(every);
  if (settings.command() == "serve") {
    const double hours = settings.get_float("audit-rotate-hours");
    const double seconds = settings.get_float("audit-checkpoint-s");
    if (!(hours >= 0 && hours < 1e5) || !(seconds >= 0 && seconds < 1e7)) {
      throw Error(ErrorCode::kInvalidArgument, "--audit-rotate-hours and --audit-checkpoint-s must be >= 0");
    }
    options.rotate_interval = std::chrono::seconds(static_cast<long>(hours * 3600));
    options.checkpoint_interval = std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  } else {
    options.checkpoint_interval = std::chrono::milliseconds(0);  // one-shot commands checkpoint at exit
  }
  return options;
}

}  // namespace vlm::cli
