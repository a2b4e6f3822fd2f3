#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vlm::cli {

enum class OptionType { kString, kInt, kFloat, kBool, kList };

// One option, declared once for every subcommand that takes it. The flag is --<name>, the
// environment variable VLM_<NAME> (dashes become underscores) and the config-file key <name> with
// dashes as underscores ("max-det" -> --max-det, VLM_MAX_DET, "max_det").
struct OptionSpec {
  std::string name;
  OptionType type;
  std::string default_value;  // as text; empty with no default
  std::string help;
  std::vector<std::string> commands;  // subcommands that accept it
};

std::span<const OptionSpec> option_table();
const OptionSpec* find_option(std::string_view name);
std::string env_name(const OptionSpec& spec);
std::string config_key(const OptionSpec& spec);
bool option_applies(const OptionSpec& spec, std::string_view command);

}  // namespace vlm::cli
