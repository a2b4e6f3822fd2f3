// Every option is declared once: no flag, VLM_* variable or config key may be defined twice, and
// none may shadow --config / VLM_CONFIG (llama.cpp tests/test-arg-parser.cpp does the same).
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <CLI/CLI.hpp>

#include "option_table.h"
#include "settings.h"

namespace vlm::cli {
namespace {

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

TEST(OptionTable, HelpShowsTheTypeOfEveryValue) {
  for (const char* command : {"detect", "serve", "think", "pull", "audit-verify", "audit-find"}) {
    CLI::App app{"test"};
    Settings settings(command);
    settings.register_flags(app);
    const std::string help = app.help();
    for (const OptionSpec& spec : option_table()) {
      if (!option_applies(spec, command) || spec.type == OptionType::kBool) continue;
      const char* type = spec.type == OptionType::kInt     ? "INT"
                         : spec.type == OptionType::kFloat ? "FLOAT"
                         : spec.type == OptionType::kList  ? "LIST"
                                                           : "TEXT";
      EXPECT_NE(help.find("--" + spec.name + " " + type), std::string::npos)
          << command << ": --" << spec.name << " should show " << type;
    }
  }
}

}  // namespace
}  // namespace vlm::cli
