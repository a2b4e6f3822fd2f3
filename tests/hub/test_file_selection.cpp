#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "remove_tree.h"
#include "vlm/error.h"
#include "vlm/hub/file_selection.h"

namespace vlm::hub {
namespace {

using Files = std::vector<std::string>;

// The file list of microsoft/Florence-2-base as the hub lists it (remote code, both weight formats).
const Files kFlorenceRepo = {
    ".gitattributes",
    "LICENSE",
    "README.md",
    "config.json",
    "configuration_florence2.py",
    "generation_config.json",
    "model.safetensors",
    "modeling_florence2.py",
    "preprocessor_config.json",
    "processing_florence2.py",
    "pytorch_model.bin",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
};

TEST(FileSelection, TakesTheNativeProcessorConfig) {
  // florence-community checkpoints keep their post-processing settings in processor_config.json.
  const Files native = {
      "README.md",      "config.json",        "model.safetensors", "processor_config.json", "preprocessor_config.json",
      "tokenizer.json", "chat_template.jinja"};
  EXPECT_EQ(select_model_files(native, "hf://florence-community/Florence-2-base").files,
            (Files{"config.json", "preprocessor_config.json", "processor_config.json", "tokenizer.json",
                   "model.safetensors"}));
}

TEST(FileSelection, TakesConfigsTokenizerAndSafetensorsOnly) {
  FileSelection selection = select_model_files(kFlorenceRepo, "hf://microsoft/Florence-2-base");
  Files expected = {"config.json",      "generation_config.json", "preprocessor_config.json",
                    "tokenizer.json",   "tokenizer_config.json",  "vocab.json",
                    "model.safetensors"};
  EXPECT_EQ(selection.files, expected);
  EXPECT_TRUE(selection.shard_index.empty());
}

TEST(FileSelection, FallsBackToPytorchBinThenShards) {
  Files bin_only = {"config.json", "pytorch_model.bin", "merges.txt", "vocab.json", "flax_model.msgpack"};
  EXPECT_EQ(select_model_files(bin_only, "r").files,
            (Files{"config.json", "vocab.json", "merges.txt", "pytorch_model.bin"}));

  Files sharded = {"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                   "model-00002-of-00002.safetensors", "pytorch_model.bin"};
  FileSelection selection = select_model_files(sharded, "r");
  EXPECT_EQ(selection.files, (Files{"config.json", "model.safetensors.index.json"}));
  EXPECT_EQ(selection.shard_index, "model.safetensors.index.json");

  Files bin_shards = {"config.json", "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin"};
  EXPECT_EQ(select_model_files(bin_shards, "r").shard_index, "pytorch_model.bin.index.json");
}

TEST(FileSelection, TakesTorchScriptExportsOfAYoloRepo) {
  Files yolo = {"README.md", "yolov8n.torchscript", "yolov8n.pt", "onnx/yolov8n.torchscript"};
  EXPECT_EQ(select_model_files(yolo, "r").files, (Files{"yolov8n.torchscript"}));
}

TEST(FileSelection, RefusesARepoWithNothingLoadableListingItsFiles) {
  Files gguf = {"README.md", "model-Q4_K_M.gguf"};
  try {
    select_model_files(gguf, "hf://org/gguf-only");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupportedModel);
    std::string message = e.what();
    EXPECT_NE(message.find("hf://org/gguf-only"), std::string::npos) << message;
    EXPECT_NE(message.find("model-Q4_K_M.gguf"), std::string::npos) << message;
  }
  // Weights without config.json cannot be loaded either.
  EXPECT_THROW(select_model_files(Files{"model.safetensors"}, "r"), Error);
}

TEST(FileSelection, ReadsShardNamesFromTheIndex) {
  std::string index = R"({"metadata": {"total_size": 10}, "weight_map": {
      "a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors",
      "c.weight": "model-00001-of-00002.safetensors"}})";
  Files shards = shards_from_index(index, "model.safetensors.index.json");
  std::sort(shards.begin(), shards.end());
  EXPECT_EQ(shards, (Files{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}));
}

TEST(FileSelection, RejectsIndexesThatAreMalformedOrEscapeTheRepo) {
  const char* bad[] = {
      "not json",
      "[]",
      R"({"weight_map": {}})",
      R"({"weight_map": {"a": 3}})",
      R"({"weight_map": {"a": "../../etc/passwd"}})",
      R"({"weight_map": {"a": "/abs.safetensors"}})",
  };
  for (const char* index : bad) {
    try {
      shards_from_index(index, "model.safetensors.index.json");
      ADD_FAILURE() << index << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kBadCheckpoint) << index;
      EXPECT_NE(std::string(e.what()).find("model.safetensors.index.json"), std::string::npos);
    }
  }
}

TEST(FileSelection, SafeRepoPaths) {
  EXPECT_TRUE(is_safe_repo_path("config.json"));
  EXPECT_TRUE(is_safe_repo_path("onnx/model.onnx"));
  for (const char* path : {"", "/etc/passwd", "a/../b", "..", "a//b", "a\\b", "./a", "a/"}) {
    EXPECT_FALSE(is_safe_repo_path(path)) << path;
  }
}

TEST(FileSelection, SnapshotCompletenessFollowsTheIndex) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() /
                 ("vlm_hub_complete_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  vlm::hub::testing::remove_tree(dir);
  fs::create_directories(dir);
  auto touch = [&](const std::string& name, const std::string& content = "x") { std::ofstream(dir / name) << content; };
  EXPECT_FALSE(snapshot_is_complete(dir));
  touch("config.json");
  EXPECT_FALSE(snapshot_is_complete(dir));
  touch("model.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
  touch("s1.safetensors");
  EXPECT_FALSE(snapshot_is_complete(dir));  // one shard missing
  touch("s2.safetensors");
  EXPECT_TRUE(snapshot_is_complete(dir));
  // A dangling symlink (blob removed from the cache) is not a file.
  fs::remove(dir / "s2.safetensors");
  fs::create_symlink("../../blobs/gone", dir / "s2.safetensors");
  EXPECT_FALSE(snapshot_is_complete(dir));
  vlm::hub::testing::remove_tree(dir);
}

}  // namespace
}  // namespace vlm::hub
