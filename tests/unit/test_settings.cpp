// How a subcommand's settings resolve: flag > VLM_* environment > --config file > default, and config
// files whose keys are checked (duplicate definitions and the round trip are test_option_table's job).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core_test_data.h"
#include "settings.h"
#include "settings_test_support.h"
#include "vlm/error.h"

namespace vlm::cli {
namespace {

namespace fs = std::filesystem;

using test::ScopedEnv;

fs::path write_config(const std::string& name, const std::string& text) {
  return test::write_test_file("settings_test", name, text);
}

Settings resolve(const std::string& command, const std::vector<std::string>& args) {
  return test::resolved_settings(command, args);
}

void expect_invalid(const std::string& command, const std::vector<std::string>& args, ErrorCode code,
                    const std::vector<std::string>& fragments) {
  try {
    resolve(command, args);
    FAIL() << "resolved without an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& fragment : fragments) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << "'" << fragment << "' not in: " << e.what();
    }
  }
}

TEST(Settings, DefaultsComeFromTheStructs) {
  Settings s = resolve("detect", {});
  EXPECT_EQ(s.options().detect, DetectOptions{});
  EXPECT_EQ(s.options().detect_run.batch, 8);
  EXPECT_FALSE(s.options().model.half);
  EXPECT_TRUE(s.options().model.flash_autotune);
  EXPECT_FALSE(s.is_set("conf"));
  // An option of another subcommand is not a flag here.
  EXPECT_THROW(resolve("detect", {"--port", "9000"}), CLI::ParseError);
}

TEST(Settings, FlagBeatsEnvironmentBeatsConfigBeatsDefault) {
  fs::path config = write_config("precedence.json", R"({"conf": 0.4, "iou": 0.55, "max_det": 17, "batch": 3})");
  ScopedEnv env({{"VLM_CONF", "0.5"}, {"VLM_IOU", "0.65"}});
  Settings s = resolve("detect", {"--config", config.string(), "--conf", "0.6"});
  EXPECT_FLOAT_EQ(s.options().detect.conf.value_or(-1.0F), 0.6F);  // flag over env and config
  EXPECT_FLOAT_EQ(s.options().detect.iou, 0.65F);                  // env over config
  EXPECT_EQ(s.options().detect.max_det, 17);                       // config over default
  EXPECT_EQ(s.options().detect_run.batch, 3);
  EXPECT_EQ(s.options().model.device, "cpu");  // default
  EXPECT_TRUE(s.is_set("conf"));
  EXPECT_TRUE(s.is_set("iou"));
  EXPECT_TRUE(s.is_set("max-det"));
  EXPECT_FALSE(s.is_set("device"));
}

TEST(Settings, AValueOverriddenByAStrongerSourceIsNotRead) {
  fs::path config = write_config("overridden.json", R"({"max_det": "many"})");
  Settings s = resolve("detect", {"--config", config.string(), "--max-det", "5"});
  EXPECT_EQ(s.options().detect.max_det, 5);
}

TEST(Settings, ListsAndSwitchesFollowTheSameOrder) {
  fs::path config = write_config("lists.json", R"({"classes": [0, 2], "half": true, "agnostic_nms": false})");
  {
    Settings s = resolve("detect", {"--config", config.string()});
    EXPECT_EQ(s.options().detect.classes, (std::vector<int>{0, 2}));
    EXPECT_TRUE(s.options().model.half);
    EXPECT_FALSE(s.options().detect.agnostic_nms);
  }
  {
    ScopedEnv env({{"VLM_CLASSES", "1,3,5"}, {"VLM_AGNOSTIC_NMS", "1"}});
    Settings s = resolve("detect", {"--config", config.string()});
    EXPECT_EQ(s.options().detect.classes, (std::vector<int>{1, 3, 5}));
    EXPECT_TRUE(s.options().detect.agnostic_nms);
    Settings flagged = resolve("detect", {"--config", config.string(), "--classes", "7,8"});
    EXPECT_EQ(flagged.options().detect.classes, (std::vector<int>{7, 8}));
  }
}

TEST(Settings, ASwitchTakesAValueAfterEquals) {
  Settings on = resolve("detect", {"--half"});
  EXPECT_TRUE(on.options().model.half);
  Settings off = resolve("detect", {"--flash-autotune=false"});
  EXPECT_FALSE(off.options().model.flash_autotune);
  ScopedEnv env({{"VLM_FLASH_AUTOTUNE", "0"}});
  EXPECT_FALSE(resolve("serve", {}).options().model.flash_autotune);
  EXPECT_TRUE(resolve("serve", {"--flash-autotune"}).options().model.flash_autotune);
}

TEST(Settings, ModelPathsKeepTheirCommasOnTheCommandLine) {
  Settings flags = resolve("detect", {"--model", "a=x,y", "--model", "b=z"});
  EXPECT_EQ(flags.options().models, (std::vector<std::string>{"a=x,y", "b=z"}));
  ScopedEnv env({{"VLM_MODEL", "a=x,b=z"}});
  EXPECT_EQ(resolve("detect", {}).options().models, (std::vector<std::string>{"a=x", "b=z"}));
}

TEST(Settings, ConfigPathFromTheEnvironmentAndEmptyVariablesIgnored) {
  fs::path config = write_config("from_env.json", R"({"max_det": 42})");
  ScopedEnv env({{"VLM_CONFIG", config.c_str()}, {"VLM_MAX_DET", ""}});
  Settings s = resolve("detect", {});
  EXPECT_EQ(s.options().detect.max_det, 42);
}

TEST(Settings, UnknownConfigKeyIsNamed) {
  fs::path config = write_config("unknown.json", R"({"conf": 0.3, "confidence": 0.5})");
  expect_invalid("detect", {"--config", config.string()}, ErrorCode::kInvalidArgument,
                 {"'confidence'", "unknown.json", "detect"});
  // A real key of another subcommand is still unknown here; and flag spellings are not config keys.
  config = write_config("other_command.json", R"({"port": 9000})");
  expect_invalid("detect", {"--config", config.string()}, ErrorCode::kInvalidArgument, {"'port'"});
  config = write_config("dashes.json", R"({"max-det": 5})");
  expect_invalid("detect", {"--config", config.string()}, ErrorCode::kInvalidArgument, {"'max-det'"});
}

TEST(Settings, MalformedConfigFiles) {
  fs::path config = write_config("not_json.json", R"({"conf": 0.3,)");
  expect_invalid("detect", {"--config", config.string()}, ErrorCode::kInvalidArgument, {"not a JSON object"});
  config = write_config("array.json", "[1, 2]");
  expect_invalid("detect", {"--config", config.string()}, ErrorCode::kInvalidArgument, {"not a JSON object"});
  config = write_config("object_value.json", R"({"conf": {"value": 0.3}})");
  expect_invalid("detect", {"--config", config.string()}, ErrorCode::kInvalidArgument, {"--conf", "an object"});
  config = write_config("list_for_scalar.json", R"({"conf": [0.3, 0.4]})");
  expect_invalid("detect", {"--config", config.string()}, ErrorCode::kInvalidArgument, {"'conf'", "not a list"});
  config = write_config("bad_number.json", R"({"max_det": "many"})");
  expect_invalid("detect", {"--config", config.string()}, ErrorCode::kInvalidArgument, {"--max-det", "'many'"});
  expect_invalid("detect", {"--config", "/nonexistent/vlm.json"}, ErrorCode::kNotFound, {"/nonexistent/vlm.json"});
}

TEST(Settings, BadValuesFailAtResolveNamingTheOption) {
  {
    ScopedEnv env({{"VLM_MAX_DET", "12abc"}});
    expect_invalid("detect", {}, ErrorCode::kInvalidArgument, {"--max-det", "'12abc'"});
  }
  {
    ScopedEnv env({{"VLM_HALF", "maybe"}});
    expect_invalid("detect", {}, ErrorCode::kInvalidArgument, {"--half", "'maybe'"});
  }
  expect_invalid("detect", {"--conf", "high"}, ErrorCode::kInvalidArgument, {"--conf", "'high'"});
  expect_invalid("detect", {"--half=maybe"}, ErrorCode::kInvalidArgument, {"--half", "'maybe'"});
}

}  // namespace
}  // namespace vlm::cli
