#pragma once

#include <optional>

#include "settings.h"
#include "vlm/audit/audit_log.h"

namespace vlm::cli {

// The audit log options of `serve` and `think`; nullopt when --audit-dir is not given.
// Throws kInvalidArgument when --audit-dir comes without --audit-key-file (the table checks ranges).
std::optional<audit::AuditOptions> audit_options(const Settings& settings);

}  // namespace vlm::cli
