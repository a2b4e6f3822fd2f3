#pragma once

#include <functional>

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

// Exit statuses shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitSomeInputsFailed = 1;
inline constexpr int kExitUsage = 2;

Subcommand add_detect_command(CLI::App& root);
Subcommand add_serve_command(CLI::App& root);
Subcommand add_audit_command(CLI::App& root);
Subcommand add_think_command(CLI::App& root);
Subcommand add_pull_command(CLI::App& root);

}  // namespace vlm::cli
