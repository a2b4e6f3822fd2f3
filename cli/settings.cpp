#include "settings.h"

#include <cstdlib>
#include <fstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "option_table.h"
#include "vlm/error.h"

namespace vlm::cli {
namespace {

[[noreturn]] void invalid(const std::string& what) { throw Error(ErrorCode::kInvalidArgument, what); }

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string json_to_text(const nlohmann::json& value, const std::string& key) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number()) return value.dump();
  invalid("config key '" + key + "' must be a string, number or boolean");
}

// What --help shows after each flag; the values themselves are parsed after every source is merged.
std::string type_name(OptionType type) {
  switch (type) {
    case OptionType::kInt: return "INT";
    case OptionType::kFloat: return "FLOAT";
    case OptionType::kList: return "LIST";
    case OptionType::kString:
    case OptionType::kBool: return "TEXT";
  }
  return "TEXT";
}

}  // namespace

Settings::Settings(std::string command) : command_(std::move(command)) {}

void Settings::register_flags(CLI::App& app) {
  app.add_option("--config", config_path_, "JSON config file; its keys are the option names with underscores")
      ->envname("VLM_CONFIG");
  for (const OptionSpec& spec : option_table()) {
    if (!option_applies(spec, command_)) continue;
    std::string help = spec.help + " [env " + env_name(spec) + "]";
    if (!spec.default_value.empty() && spec.type != OptionType::kBool) help += " (default " + spec.default_value + ")";
    if (spec.type == OptionType::kBool) {
      app.add_flag("--" + spec.name, flag_switches_[spec.name], help);
    } else if (spec.type == OptionType::kList) {
      app.add_option("--" + spec.name, flag_values_[spec.name], help)
          ->type_name(type_name(spec.type))
          ->allow_extra_args(false);
    } else {
      app.add_option("--" + spec.name, flag_values_[spec.name], help)
          ->type_name(type_name(spec.type))
          ->expected(1)
          ->allow_extra_args(false);
    }
  }
}

void Settings::set_from_text(const std::string& name, const std::string& text) {
  const OptionSpec* spec = find_option(name);
  if (spec->type == OptionType::kList) {
    values_[name] = split_commas(text);
  } else {
    values_[name] = {text};
  }
  explicit_[name] = true;
}

void Settings::resolve() {
  for (const OptionSpec& spec : option_table()) {
    if (!option_applies(spec, command_)) continue;
    if (spec.type == OptionType::kList) {
      values_[spec.name] = split_commas(spec.default_value);
    } else {
      values_[spec.name] = {spec.default_value};
    }
  }
  if (!config_path_.empty()) {
    std::ifstream in(config_path_);
    if (!in) throw Error(ErrorCode::kNotFound, "cannot open config file " + config_path_);
    nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
    if (config.is_discarded() || !config.is_object()) invalid("config file " + config_path_ + " is not a JSON object");
    for (const auto& [key, value] : config.items()) {
      const OptionSpec* spec = nullptr;
      for (const OptionSpec& candidate : option_table()) {
        if (config_key(candidate) == key && option_applies(candidate, command_)) spec = &candidate;
      }
      if (spec == nullptr)
        invalid("config file " + config_path_ + ": unknown key '" + key + "' for '" + command_ + "'");
      if (value.is_array()) {
        if (spec->type != OptionType::kList) invalid("config key '" + key + "' takes one value, not a list");
        std::vector<std::string> items;
        for (const auto& item : value) items.push_back(json_to_text(item, key));
        values_[spec->name] = items;
        explicit_[spec->name] = true;
      } else {
        set_from_text(spec->name, json_to_text(value, key));
      }
    }
  }
  for (const OptionSpec& spec : option_table()) {
    if (!option_applies(spec, command_)) continue;
    if (const char* env = std::getenv(env_name(spec).c_str()); env != nullptr && *env != '\0') {
      set_from_text(spec.name, env);
    }
    if (spec.type == OptionType::kBool) {
      if (flag_switches_[spec.name]) {
        values_[spec.name] = {"true"};
        explicit_[spec.name] = true;
      }
    } else if (!flag_values_[spec.name].empty()) {
      if (spec.type == OptionType::kList) {
        std::vector<std::string> items;
        for (const std::string& value : flag_values_[spec.name]) {
          // Paths may hold commas; only id lists are comma-separated on the command line.
          for (const std::string& item : spec.name == "model" ? std::vector<std::string>{value} : split_commas(value)) {
            items.push_back(item);
          }
        }
        values_[spec.name] = items;
      } else {
        values_[spec.name] = {flag_values_[spec.name].back()};
      }
      explicit_[spec.name] = true;
    }
  }
  // Parse every typed value now, so a bad value fails at start-up and names its option.
  for (const OptionSpec& spec : option_table()) {
    if (!option_applies(spec, command_)) continue;
    if (spec.type == OptionType::kInt) get_int(spec.name);
    if (spec.type == OptionType::kFloat) get_float(spec.name);
    if (spec.type == OptionType::kBool) get_bool(spec.name);
  }
}

std::string Settings::get(std::string_view name) const {
  auto it = values_.find(std::string(name));
  if (it == values_.end())
    throw Error(ErrorCode::kInternal, "option '" + std::string(name) + "' is not declared for " + command_);
  return it->second.empty() ? std::string() : it->second.back();
}

bool Settings::is_set(std::string_view name) const {
  auto it = explicit_.find(std::string(name));
  return it != explicit_.end() && it->second;
}

long Settings::get_int(std::string_view name) const {
  std::string text = get(name);
  try {
    std::size_t used = 0;
    long value = std::stol(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  invalid("--" + std::string(name) + " must be an integer, got '" + text + "'");
}

double Settings::get_float(std::string_view name) const {
  std::string text = get(name);
  try {
    std::size_t used = 0;
    double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  invalid("--" + std::string(name) + " must be a number, got '" + text + "'");
}

bool Settings::get_bool(std::string_view name) const {
  std::string text = get(name);
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off" || text.empty()) return false;
  invalid("--" + std::string(name) + " must be true or false, got '" + text + "'");
}

std::vector<std::string> Settings::get_list(std::string_view name) const {
  auto it = values_.find(std::string(name));
  if (it == values_.end())
    throw Error(ErrorCode::kInternal, "option '" + std::string(name) + "' is not declared for " + command_);
  return it->second;
}

}  // namespace vlm::cli
