#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "options.h"

namespace CLI {
class App;
}

namespace vlm::cli {

// The typed options of one subcommand, each from its command-line flag, else its VLM_* environment
// variable, else the --config file, else the default in Options.
class Settings {
 public:
  explicit Settings(std::string command);

  // Adds a flag for every option of this command, plus --config.
  void register_flags(CLI::App& app);
  // Call after parsing. Throws vlm::Error kInvalidArgument for unknown config keys or bad values,
  // kNotFound for a config file that cannot be opened.
  void resolve();

  const std::string& command() const { return command_; }
  const Options& options() const { return options_; }
  bool is_set(std::string_view name) const;  // given anywhere, not left at its default

 private:
  std::string command_;
  std::string config_path_;
  std::map<std::string, std::vector<std::string>> flag_values_;
  Options options_;
  std::set<std::string, std::less<>> explicit_;
};

}  // namespace vlm::cli
