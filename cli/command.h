#pragma once

#include <functional>

#include "vlm/error.h"

namespace CLI {
class App;
}

namespace vlm::cli {

// A subcommand registered on the root app; run() is called when it was the one parsed and returns
// the process exit status.
struct Subcommand {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// Exit statuses shared by every subcommand: kExitOk, kExitUsage, ... (include/vlm/error.h); a
// fatal vlm::Error exits with its code's status from the error table (report_fatal).
inline constexpr int kExitSomeInputsFailed = kExitFailure;

Subcommand add_detect_command(CLI::App& root);
Subcommand add_serve_command(CLI::App& root);
Subcommand add_audit_command(CLI::App& root);
Subcommand add_think_command(CLI::App& root);
Subcommand add_pull_command(CLI::App& root);

}  // namespace vlm::cli
