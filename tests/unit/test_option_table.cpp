// The option table: every option is declared once (no flag, VLM_* variable or config key twice, none
// shadowing --config / VLM_CONFIG, as llama.cpp's tests/test-arg-parser.cpp checks), every entry
// reads the same typed value from its flag, its variable, a config file and, for POST /detect
// parameters, a request; a range is enforced the same way from each; --help and the README's
// command lines and server/openapi.json agree with the table.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "option_table.h"
#include "option_value.h"
#include "request_params.h"
#include "settings.h"
#include "settings_test_support.h"
#include "vlm/error.h"

namespace vlm::cli {
namespace {

namespace fs = std::filesystem;

// The command an option is checked under: its first one ("*" means every command: detect).
std::string command_of(const OptionSpec& spec) {
  return spec.commands.front() == "*" ? "detect" : spec.commands.front();
}

nlohmann::json default_of(const OptionSpec& spec) {
  Options defaults;
  return value_json(spec.binding.field(defaults));
}

// A value other than the default, within range, as typed JSON; `text` below spells it as a flag would.
nlohmann::json sample_of(const OptionSpec& spec) {
  const nlohmann::json fallback = default_of(spec);
  const Range range = spec.range.value_or(Range{});
  if (fallback.is_null()) {
    // An optional field, unset by default: any value in range.
    const std::string type = type_name(spec);
    if (type == "INT") return static_cast<std::int64_t>(std::isfinite(range.low) ? range.low + 1 : 1);
    if (type == "FLOAT") return 0.5;
    return "never";
  }
  if (fallback.is_boolean()) return !fallback.get<bool>();
  if (fallback.is_number()) {
    const double step = fallback.is_number_integer() ? 1 : 0.5;
    double value = fallback.get<double>() + step;
    if (value > range.high || (range.high_open && value >= range.high)) value = fallback.get<double>() - step;
    if (fallback.is_number_integer()) return static_cast<std::int64_t>(value);
    return value;
  }
  if (fallback.is_string()) return "sample/value " + spec.name;
  // Lists: ids inside the range, or two texts.
  if (spec.range) return nlohmann::json::array({3, 5});
  return nlohmann::json::array({"first", "second"});
}

std::string text_of(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array()) {
    std::string text;
    for (const auto& item : value) text += (text.empty() ? "" : ",") + text_of(item);
    return text;
  }
  return value.dump();
}

bool is_list(const OptionSpec& spec) { return type_name(spec) == "LIST"; }

using test::ScopedEnv;

fs::path write_config(const std::string& key, const nlohmann::json& value) {
  return test::write_test_file("option_table_test", key + ".json", nlohmann::json{{key, value}}.dump());
}

Options resolve(const std::string& command, const std::vector<std::string>& args) {
  return test::resolved_settings(command, args).options();
}

nlohmann::json field_value(const OptionSpec& spec, Options options) { return value_json(spec.binding.field(options)); }

std::vector<std::string> flag_args(const OptionSpec& spec, const nlohmann::json& value) {
  if (type_name(spec).empty()) return {"--" + spec.name + "=" + text_of(value)};
  if (!value.is_array()) return {"--" + spec.name, text_of(value)};
  std::vector<std::string> args;  // one flag per item, as paths must be given
  for (const auto& item : value) {
    args.push_back("--" + spec.name);
    args.push_back(text_of(item));
  }
  return args;
}

// Each way an option reaches the program, as a function that reads `value` and returns the field.
struct Source {
  std::string name;
  std::function<nlohmann::json(const OptionSpec&, const nlohmann::json&)> read;
};

std::vector<Source> sources_of(const OptionSpec& spec) {
  std::vector<Source> sources = {
      {"flag", [](const OptionSpec& s,
                  const nlohmann::json& v) { return field_value(s, resolve(command_of(s), flag_args(s, v))); }},
      {"environment",
       [](const OptionSpec& s, const nlohmann::json& v) {
         ScopedEnv env({{env_name(s), text_of(v)}});
         return field_value(s, resolve(command_of(s), {}));
       }},
      {"config file",
       [](const OptionSpec& s, const nlohmann::json& v) {
         return field_value(s, resolve(command_of(s), {"--config", write_config(config_key(s), v).string()}));
       }},
  };
  if (spec.request_settable()) {
    auto request = [](const OptionSpec& s, const nlohmann::json& params) {
      Options options;
      options.detect = parse_detect_params(params, DetectOptions{}).options;
      return field_value(s, options);
    };
    sources.push_back({"request JSON value", [request](const OptionSpec& s, const nlohmann::json& v) {
                         return request(s, {{config_key(s), v}});
                       }});
    sources.push_back({"request form text", [request](const OptionSpec& s, const nlohmann::json& v) {
                         return request(s, {{config_key(s), text_of(v)}});
                       }});
  }
  return sources;
}

TEST(OptionTable, NoFlagEnvOrConfigKeyIsDefinedTwice) {
  std::set<std::string> flags{"config", "help", "version"};
  std::set<std::string> envs{"VLM_CONFIG"};
  std::set<std::string> keys;
  for (const OptionSpec& spec : option_table()) {
    EXPECT_TRUE(flags.insert(spec.name).second) << "--" << spec.name << " is defined twice";
    EXPECT_TRUE(envs.insert(env_name(spec)).second) << env_name(spec) << " is defined twice";
    EXPECT_TRUE(keys.insert(config_key(spec)).second) << "config key " << config_key(spec) << " is defined twice";
    EXPECT_FALSE(spec.help.empty()) << "--" << spec.name << " has no help text";
    EXPECT_FALSE(spec.commands.empty()) << "--" << spec.name << " belongs to no subcommand";
  }
}

// Two rows bound to one field would read each other's values; a round trip cannot see that.
TEST(OptionTable, EveryEntryBindsAFieldOfItsOwn) {
  Options options;
  std::map<const void*, std::string> owners;
  for (const OptionSpec& spec : option_table()) {
    const void* field = std::visit([](auto* target) -> const void* { return target; }, spec.binding.field(options));
    const auto [it, inserted] = owners.emplace(field, spec.name);
    EXPECT_TRUE(inserted) << "--" << spec.name << " and --" << it->second << " bind the same field";
  }
}

TEST(OptionTable, DetectOptionsCompareEveryField) {
  // Requests are batched together only when their options are equal; every field must take part.
  for (const OptionSpec& spec : option_table()) {
    if (!spec.request_settable()) continue;
    DetectOptions changed;
    assign_value(spec, spec.binding.request_field(changed), sample_of(spec), config_key(spec));
    EXPECT_NE(changed, DetectOptions{}) << config_key(spec);
  }
}

TEST(OptionTable, ServeFlagsOfTheIssueAreAllDeclared) {
  for (const char* name : {"model", "default-model", "host", "port", "api-key", "api-key-file", "ssl-cert-file",
                           "ssl-key-file", "cors-origins", "device", "half", "threads", "max-body-mb", "max-pixels",
                           "timeout-s", "queue", "batch-max", "batch-wait-ms"}) {
    const OptionSpec* spec = find_option(name);
    ASSERT_NE(spec, nullptr) << "--" << name;
    EXPECT_TRUE(option_applies(*spec, "serve")) << "--" << name << " is not a serve option";
  }
}

TEST(OptionTable, NamesMapToEnvAndConfigKeys) {
  const OptionSpec* spec = find_option("batch-wait-ms");
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(env_name(*spec), "VLM_BATCH_WAIT_MS");
  EXPECT_EQ(config_key(*spec), "batch_wait_ms");
}

TEST(OptionTable, RequestParametersAreTheDetectOptionsEntries) {
  std::set<std::string> expected{"model",
                                 "conf",
                                 "iou",
                                 "max_det",
                                 "classes",
                                 "agnostic_nms",
                                 "task",
                                 "text",
                                 "num_beams",
                                 "max_new_tokens",
                                 "no_repeat_ngram_size",
                                 "length_penalty",
                                 "early_stopping"};
  EXPECT_EQ(std::set<std::string>(detect_param_names().begin(), detect_param_names().end()), expected);
}

// server/openapi.json documents exactly the request-settable rows (and `model`) in each input form.
TEST(OptionTable, OpenApiDocumentsTheRequestParameters) {
  std::ifstream in(std::string(VLM_SOURCE_DIR) + "/server/openapi.json");
  ASSERT_TRUE(in);
  const nlohmann::json doc = nlohmann::json::parse(in);
  const nlohmann::json& detect = doc["paths"]["/detect"]["post"];
  const std::set<std::string> expected(detect_param_names().begin(), detect_param_names().end());
  std::set<std::string> query;
  for (const auto& parameter : detect["parameters"]) {
    if (parameter["in"] == "query") query.insert(parameter["name"].get<std::string>());
  }
  EXPECT_EQ(query, expected) << "query parameters";
  auto properties = [](const nlohmann::json& schema) {
    std::set<std::string> names;
    for (const auto& [name, value] : schema["properties"].items()) {
      if (name != "image" && name != "images") names.insert(name);
    }
    return names;
  };
  EXPECT_EQ(properties(detect["requestBody"]["content"]["multipart/form-data"]["schema"]), expected) << "form fields";
  EXPECT_EQ(properties(doc["components"]["schemas"]["DetectJsonRequest"]), expected) << "JSON keys";
}

// Every entry reads the same typed value from every source it has.
TEST(OptionTable, EveryEntryRoundTripsFromEverySource) {
  for (const OptionSpec& spec : option_table()) {
    const nlohmann::json sample = sample_of(spec);
    const nlohmann::json fallback = default_of(spec);
    for (const Source& source : sources_of(spec)) {
      try {
        const nlohmann::json got = source.read(spec, sample);
        EXPECT_NE(got, fallback) << "--" << spec.name << " from the " << source.name << " kept its default";
        if (sample.is_number_float()) {
          EXPECT_NEAR(got.get<double>(), sample.get<double>(), 1e-6) << "--" << spec.name << " from " << source.name;
        } else {
          EXPECT_EQ(got, sample) << "--" << spec.name << " from the " << source.name;
        }
      } catch (const std::exception& error) {
        ADD_FAILURE() << "--" << spec.name << " from the " << source.name << ": " << error.what();
      }
    }
  }
}

// "must be an integer in [1, 10000]": what a refusal says it expected, without the name or the value.
std::string expectation(const std::string& message) {
  const auto start = message.find("must be ");
  const auto end = message.rfind(", got ");
  if (start == std::string::npos || end == std::string::npos || end < start) return "unparsed: " + message;
  return message.substr(start, end - start);
}

TEST(OptionTable, RangesAreEnforcedTheSameWayFromEverySource) {
  int ranged = 0;
  for (const OptionSpec& spec : option_table()) {
    if (!spec.range) continue;
    ++ranged;
    const Range& range = *spec.range;
    const bool integral = type_name(spec) == "INT" || is_list(spec);
    // Just outside, and the edge itself when it is inside.
    const bool below = std::isfinite(range.low);
    const double edge = below ? range.low : range.high;
    const bool edge_open = below ? range.low_open : range.high_open;
    const double step = integral ? 1 : 1e-3;
    const double outside = edge_open ? edge : (below ? edge - step : edge + step);
    auto as_json = [&](double number) -> nlohmann::json {
      nlohmann::json value = integral ? nlohmann::json(static_cast<std::int64_t>(number)) : nlohmann::json(number);
      return is_list(spec) ? nlohmann::json::array({value}) : value;
    };
    std::set<std::string> expectations;
    for (const Source& source : sources_of(spec)) {
      try {
        source.read(spec, as_json(outside));
        ADD_FAILURE() << "--" << spec.name << " = " << outside << " from the " << source.name << " was accepted";
      } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
        const std::string message = error.what();
        const std::string label = source.name.starts_with("request") ? config_key(spec) : "--" + spec.name;
        EXPECT_TRUE(message.starts_with(label + " must be ")) << source.name << ": " << message;
        expectations.insert(expectation(message));
      }
      if (!edge_open) {
        EXPECT_NO_THROW(source.read(spec, as_json(edge)))
            << "--" << spec.name << " = " << edge << " from " << source.name;
      }
    }
    EXPECT_EQ(expectations.size(), 1u) << "--" << spec.name << " is refused differently by its sources: "
                                       << nlohmann::json(expectations).dump();
  }
  EXPECT_GT(ranged, 20);
}

TEST(OptionTable, OneBooleanVocabularyEverywhere) {
  const OptionSpec* half = find_option("half");
  const OptionSpec* agnostic = find_option("agnostic-nms");
  ASSERT_NE(half, nullptr);
  ASSERT_NE(agnostic, nullptr);
  for (const auto& [word, meaning] : std::vector<std::pair<std::string, bool>>{{"true", true},
                                                                               {"1", true},
                                                                               {"yes", true},
                                                                               {"ON", true},
                                                                               {"false", false},
                                                                               {"0", false},
                                                                               {"no", false},
                                                                               {"Off", false}}) {
    for (const OptionSpec* spec : {half, agnostic}) {
      for (const Source& source : sources_of(*spec)) {
        EXPECT_EQ(source.read(*spec, word), meaning) << spec->name << " '" << word << "' from " << source.name;
      }
    }
  }
  for (const Source& source : sources_of(*agnostic)) {
    EXPECT_THROW(source.read(*agnostic, "yes please"), Error) << source.name;
  }
}

// early_stopping is transformers' bool-or-"never": the boolean words, JSON booleans and "never".
TEST(OptionTable, EarlyStoppingReadsBooleansAndNever) {
  const OptionSpec* spec = find_option("early-stopping");
  ASSERT_NE(spec, nullptr);
  for (const auto& [value, meaning] : std::vector<std::pair<nlohmann::json, nlohmann::json>>{
           {"never", "never"}, {"yes", true}, {"0", false}, {true, true}, {false, false}}) {
    for (const Source& source : sources_of(*spec)) {
      if (!value.is_string() && !source.name.starts_with("request JSON")) continue;
      EXPECT_EQ(source.read(*spec, value), meaning) << value.dump() << " from " << source.name;
    }
  }
  for (const Source& source : sources_of(*spec)) {
    try {
      source.read(*spec, "sometimes");
      ADD_FAILURE() << "'sometimes' accepted from " << source.name;
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("must be true, false or never, got 'sometimes'"), std::string::npos)
          << error.what();
    }
  }
  // Unset stays unset: the checkpoint decides.
  EXPECT_FALSE(parse_detect_params(nlohmann::json::object(), DetectOptions{}).options.early_stopping.has_value());
}

std::string help_of(const std::string& command) {
  CLI::App app{"test"};
  Settings settings(command);
  settings.register_flags(app);
  return app.help();
}

const std::vector<std::string> kCommands = {"detect", "serve", "think", "pull", "audit-verify", "audit-find"};

TEST(OptionTable, HelpListsExactlyTheTableWithTypesAndVariables) {
  for (const std::string& command : kCommands) {
    const std::string help = help_of(command);
    std::set<std::string> listed;
    std::istringstream lines(help);
    for (std::string line; std::getline(lines, line);) {
      std::smatch match;
      // Only a flag at the start of a line is one the command defines; help texts mention others.
      if (std::regex_search(line, match, std::regex(R"(^\s+(?:-h,)?--([a-z][a-z0-9-]*))"))) listed.insert(match[1]);
    }
    std::set<std::string> expected{"help", "config"};
    for (const OptionSpec& spec : option_table()) {
      if (!option_applies(spec, command)) continue;
      expected.insert(spec.name);
      const std::string type = type_name(spec);
      const std::string shown = "--" + spec.name + (type.empty() ? " " : " " + type);
      EXPECT_NE(help.find(shown), std::string::npos)
          << command << ": --" << spec.name << " should show '" << shown << "'";
      EXPECT_NE(help.find("[env " + env_name(spec) + "]"), std::string::npos) << command << ": " << env_name(spec);
    }
    EXPECT_EQ(listed, expected) << command;
  }
  // The defaults shown come from the structs; ranges are said as the refusals say them.
  EXPECT_NE(help_of("detect").find("(default 0.7; a number in [0, 1])"), std::string::npos);
  EXPECT_NE(help_of("detect").find("(default 300; an integer in [1, 10000])"), std::string::npos);
  EXPECT_NE(help_of("serve").find("(default 20; a number in (0, 4096])"), std::string::npos);
  EXPECT_NE(help_of("serve").find("(default 127.0.0.1)"), std::string::npos);
}

// Every flag on a `vlmserve <command>` line of the README's code blocks is an option of that command.
TEST(OptionTable, ReadmeCommandLinesUseOnlyTheTablesFlags) {
  std::ifstream in(std::string(VLM_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(in) << "README.md not found under " << VLM_SOURCE_DIR;
  bool in_code = false;
  std::string command_line;
  int checked = 0;
  const std::regex invocation(
      R"((?:^|[\s(;|&])vlmserve\s+(detect|serve|think|pull|audit\s+verify|audit\s+find)\b(.*))");
  const std::regex flag(R"((?:^|\s)--([a-z][a-z0-9-]*))");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("```")) {
      in_code = !in_code;
      continue;
    }
    if (!in_code) continue;
    command_line += line;
    if (!command_line.empty() && command_line.back() == '\\') {
      command_line.pop_back();
      continue;
    }
    std::smatch match;
    if (std::regex_search(command_line, match, invocation)) {
      std::string command = std::regex_replace(match[1].str(), std::regex(R"(\s+)"), "-");
      // Stop at the next command of the line (a pipe, a comment, `;`).
      std::string rest = match[2].str();
      rest = rest.substr(0, rest.find_first_of("|#;&"));
      for (std::sregex_iterator it(rest.begin(), rest.end(), flag), end; it != end; ++it) {
        const std::string name = (*it)[1];
        ++checked;
        if (name == "config" || name == "help") continue;
        const OptionSpec* spec = find_option(name);
        EXPECT_TRUE(spec != nullptr && option_applies(*spec, command))
            << "README: vlmserve " << command << " --" << name << " is not an option of " << command;
      }
    }
    command_line.clear();
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace vlm::cli
