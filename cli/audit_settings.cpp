#include "audit_settings.h"

#include <cmath>
#include <string>

#include "vlm/error.h"

namespace vlm::cli {

std::optional<audit::AuditOptions> audit_options(const Settings& settings) {
  const AuditSettings& given = settings.options().audit;
  if (given.dir.empty()) return std::nullopt;
  audit::AuditOptions options;
  options.directory = given.dir;
  options.key_file = given.key_file;
  if (options.key_file.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "--audit-dir needs --audit-key-file (it is created if absent)");
  }
  options.signing_key_file = given.signing_key_file;
  options.checkpoint_copy = given.checkpoint_copy;
  options.fsync_each_record = !given.no_fsync;
  options.rotate_bytes = static_cast<std::uint64_t>(std::llround(given.rotate_mb * 1024 * 1024));
  options.checkpoint_every_records = static_cast<std::uint64_t>(given.checkpoint_records);
  if (settings.command() == "serve") {
    options.rotate_interval = std::chrono::seconds(static_cast<long>(given.rotate_hours * 3600));
    options.checkpoint_interval = std::chrono::milliseconds(static_cast<long>(given.checkpoint_s * 1000));
  } else {
    options.checkpoint_interval = std::chrono::milliseconds(0);  // one-shot commands checkpoint at exit
  }
  return options;
}

}  // namespace vlm::cli
