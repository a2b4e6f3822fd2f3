#include <csignal>
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>

#include "command.h"
#include "vlm/build_info.h"

int main(int argc, char** argv) {
  // A peer that closes a connection mid-write (HTTPS downloads, server clients) must be an error
  // return, not a silent SIGPIPE death: OpenSSL writes with plain write(), without MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"vlmserve: vision-language model inference (YOLO, Florence-2) from the command line and over HTTP"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print version, libtorch, CUDA and attention backends, then exit");

  std::vector<vlm::cli::Subcommand> commands = {
      vlm::cli::add_detect_command(app), vlm::cli::add_serve_command(app), vlm::cli::add_audit_command(app),
      vlm::cli::add_think_command(app),  vlm::cli::add_pull_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return vlm::kExitUsage;
  }
  if (show_version) {
    std::cout << vlm::build_info().dump(2) << '\n';
    return vlm::kExitOk;
  }
  for (const auto& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  std::cerr << app.help();
  return vlm::kExitUsage;
}
