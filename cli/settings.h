#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace vlm::cli {

// The resolved value of every option of one subcommand: command line, then VLM_* environment
// variable, then --config file, then the table's default.
class Settings {
 public:
  explicit Settings(std::string command);

  // Adds a flag for every option of this command, plus --config.
  void register_flags(CLI::App& app);
  // Call after parsing. Throws vlm::Error kInvalidArgument for unknown config keys or bad values.
  void resolve();

  const std::string& command() const { return command_; }
  std::string get(std::string_view name) const;
  bool is_set(std::string_view name) const;  // given anywhere but the default
  long get_int(std::string_view name) const;
  double get_float(std::string_view name) const;
  bool get_bool(std::string_view name) const;
  std::vector<std::string> get_list(std::string_view name) const;

 private:
  void set_from_text(const std::string& name, const std::string& text);

  std::string command_;
  std::string config_path_;
  std::map<std::string, std::vector<std::string>> flag_values_;
  std::map<std::string, bool> flag_switches_;
  std::map<std::string, std::vector<std::string>> values_;  // resolved
  std::map<std::string, bool> explicit_;
};

}  // namespace vlm::cli
