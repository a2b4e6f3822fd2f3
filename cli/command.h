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
// `pull` only: a local failure (disk, cache, a download failing verification); the hub could not
// be reached, timed out or refused (scripts may retry these); the repository, revision or file
// does not exist (or, offline, is not cached).
inline constexpr int kExitLocalFailure = 1;
inline constexpr int kExitNetwork = 3;
inline constexpr int kExitNotFound = 4;

Subcommand add_detect_command(CLI::App& root);
Subcommand add_serve_command(CLI::App& root);
Subcommand add_audit_command(CLI::App& root);
Subcommand add_think_command(CLI::App& root);
Subcommand add_pull_command(CLI::App& root);

}  // namespace vlm::cli
