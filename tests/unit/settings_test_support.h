// What the option-table and settings tests share: environment variables set for one test, config
// files written where ctest keeps test data, and a subcommand's settings resolved from a command line.
#pragma once

#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "settings.h"

namespace vlm::cli::test {

// Sets environment variables for one test and restores what was there before.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<std::string, std::string>> values) {
    for (const auto& [name, value] : values) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Writes `text` to `name` in a folder of its own under $VLM_TEST_DATA (the system's temporary folder
// outside ctest).
inline std::filesystem::path write_test_file(const std::string& folder_name, const std::string& name,
                                             const std::string& text) {
  const char* root = std::getenv("VLM_TEST_DATA");
  const std::filesystem::path folder =
      std::filesystem::path(root ? root : std::filesystem::temp_directory_path().string()) / folder_name;
  std::filesystem::create_directories(folder);
  const std::filesystem::path path = folder / name;
  std::ofstream(path) << text;
  return path;
}

// `command`'s settings after parsing `args` as its flags and resolving environment and config files.
inline Settings resolved_settings(const std::string& command, const std::vector<std::string>& args) {
  Settings settings(command);
  CLI::App app;
  settings.register_flags(app);
  std::vector<const char*> argv = {"vlmserve"};
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  settings.resolve();
  return settings;
}

}  // namespace vlm::cli::test
