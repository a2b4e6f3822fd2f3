#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vlm/model.h"

namespace vlm::cli {

struct Options;

// Where an option's typed value lives; the type decides how text and JSON values are read. An
// optional field is unset until a source gives it a value (the model's own default applies).
using FieldRef = std::variant<int*, std::int64_t*, float*, double*, bool*, std::string*, std::vector<std::string>*,
                              std::vector<int>*, std::optional<int>*, std::optional<float>*, std::optional<double>*,
                              std::optional<EarlyStopping>*>;

// Accepted numbers, for each element of an id list. Bounds may be open or infinite.
struct Range {
  double low = -std::numeric_limits<double>::infinity();
  double high = std::numeric_limits<double>::infinity();
  bool low_open = false;
  bool high_open = false;
};

struct Binding {
  std::function<FieldRef(Options&)> field;
  // Set for POST /detect parameters: the same field in the DetectOptions a request starts from.
  std::function<FieldRef(DetectOptions&)> request_field;
};

// One option, declared once for every subcommand that takes it and for HTTP requests. The flag is
// --<name>, the environment variable VLM_<NAME> and the config-file key (and request parameter)
// <name> with dashes as underscores ("max-det" -> --max-det, VLM_MAX_DET, "max_det").
struct OptionSpec {
  // A constructor rather than aggregate initialisation, so table rows may leave the last fields out.
  OptionSpec(std::string option_name, Binding field_binding, std::string help_text, std::vector<std::string> in,
             std::optional<Range> accepted = std::nullopt, bool one_item = false)
      : name(std::move(option_name)),
        binding(std::move(field_binding)),
        help(std::move(help_text)),
        commands(std::move(in)),
        range(accepted),
        flag_is_one_item(one_item) {}

  std::string name;
  Binding binding;
  std::string help;
  std::vector<std::string> commands;  // subcommands that accept it ("*": all)
  std::optional<Range> range;
  // A flag value is one item even with commas in it (paths); the environment and config still split.
  bool flag_is_one_item = false;

  bool request_settable() const { return static_cast<bool>(binding.request_field); }
};

std::span<const OptionSpec> option_table();
const OptionSpec* find_option(std::string_view name);
std::string env_name(const OptionSpec& spec);
std::string config_key(const OptionSpec& spec);
bool option_applies(const OptionSpec& spec, std::string_view command);

// What --help shows after a flag: INT, FLOAT, TEXT or LIST; empty for switches.
std::string type_name(const OptionSpec& spec);
// The default as --help shows it, from a default-constructed Options; empty when there is none.
std::string default_text(const OptionSpec& spec);

}  // namespace vlm::cli
