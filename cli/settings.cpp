#include "settings.h"

#include <cstdlib>
#include <fstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "option_table.h"
#include "option_value.h"
#include "vlm/error.h"

namespace vlm::cli {
namespace {

[[noreturn]] void invalid(const std::string& what) { throw Error(ErrorCode::kInvalidArgument, what); }

nlohmann::json read_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open config file " + path);
  nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
  if (config.is_discarded() || !config.is_object()) invalid("config file " + path + " is not a JSON object");
  return config;
}

}  // namespace

Settings::Settings(std::string command) : command_(std::move(command)) {}

void Settings::register_flags(CLI::App& app) {
  app.add_option("--config", config_path_, "JSON config file; its keys are the option names with underscores")
      ->envname("VLM_CONFIG");
  for (const OptionSpec& spec : option_table()) {
    if (!option_applies(spec, command_)) continue;
    std::string help = spec.help + " [env " + env_name(spec) + "]";
    const std::string type = type_name(spec);
    std::vector<std::string> notes;
    if (const std::string fallback = default_text(spec); !fallback.empty()) notes.push_back("default " + fallback);
    if (const std::string accepted = accepted_text(spec); !accepted.empty()) notes.push_back(accepted);
    if (!notes.empty()) help += " (" + (notes.size() == 1 ? notes[0] : notes[0] + "; " + notes[1]) + ")";
    // Every value is kept as text and read by the table's typed reader, so a flag, a variable, a
    // config key and a request parameter accept exactly the same spellings.
    std::vector<std::string>& values = flag_values_[spec.name];
    if (type.empty()) {
      // A bare switch reads "true"; --name=false spells the other value.
      app.add_flag("--" + spec.name, values, help)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    } else {
      CLI::Option* option = app.add_option("--" + spec.name, values, help)->type_name(type)->allow_extra_args(false);
      if (type != "LIST") option->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
  }
}

void Settings::resolve() {
  // The winning raw value of each option, by precedence; read into its field once, at the end, so a
  // value overridden by a stronger source is never read.
  std::map<std::string, std::pair<const OptionSpec*, nlohmann::json>> chosen;
  if (!config_path_.empty()) {
    const nlohmann::json config = read_config(config_path_);
    for (const auto& [key, value] : config.items()) {
      const OptionSpec* spec = nullptr;
      for (const OptionSpec& candidate : option_table()) {
        if (config_key(candidate) == key && option_applies(candidate, command_)) spec = &candidate;
      }
      if (spec == nullptr) {
        invalid("config file " + config_path_ + ": unknown key '" + key + "' for '" + command_ + "'");
      }
      if (value.is_array() && type_name(*spec) != "LIST")
        invalid("config key '" + key + "' takes one value, not a list");
      chosen[spec->name] = {spec, value};
    }
  }
  for (const OptionSpec& spec : option_table()) {
    if (!option_applies(spec, command_)) continue;
    if (const char* env = std::getenv(env_name(spec).c_str()); env != nullptr && *env != '\0') {
      chosen[spec.name] = {&spec, env};
    }
    const std::vector<std::string>& flags = flag_values_[spec.name];
    if (flags.empty()) continue;
    if (type_name(spec) == "LIST") {
      // Repeated flags add items; each is split at commas unless it is a path.
      nlohmann::json items = nlohmann::json::array();
      for (const std::string& value : flags) {
        if (spec.flag_is_one_item) {
          items.push_back(value);
          continue;
        }
        std::vector<std::string> parts;
        assign_value(spec, &parts, value, "--" + spec.name);
        for (std::string& part : parts) items.push_back(std::move(part));
      }
      chosen[spec.name] = {&spec, items};
    } else {
      chosen[spec.name] = {&spec, flags.back()};
    }
  }
  for (const auto& [name, entry] : chosen) {
    assign_value(*entry.first, entry.first->binding.field(options_), entry.second, "--" + name);
    explicit_.insert(name);
  }
}

bool Settings::is_set(std::string_view name) const { return explicit_.contains(name); }

}  // namespace vlm::cli
