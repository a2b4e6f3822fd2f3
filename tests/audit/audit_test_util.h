#pragma once

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "vlm/audit/audit_log.h"

namespace vlm::audit::testing {

// A fresh directory under VLM_TEST_DATA (or the system temp dir) named after the running test.
inline std::filesystem::path fresh_dir(const std::string& tag = "") {
  const char* root = std::getenv("VLM_TEST_DATA");
  std::filesystem::path base = root != nullptr ? std::filesystem::path(root) : std::filesystem::temp_directory_path();
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  auto dir = base / "audit" / (std::string(info->test_suite_name()) + "." + info->name() + tag);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ::chmod(dir.c_str(), 0700);
  return dir;
}

inline AuditOptions options_in(const std::filesystem::path& dir) {
  AuditOptions options;
  options.directory = dir / "log";
  options.key_file = dir / "audit.key";
  options.checkpoint_copy = dir / "checkpoints.jsonl";
  options.checkpoint_interval = std::chrono::milliseconds(0);
  return options;
}

inline RequestEntry entry(int i) {
  RequestEntry e;
  e.request_id = "req-" + std::to_string(i);
  e.client = "key-" + std::to_string(i % 3);
  e.endpoint = "/think";
  e.models = {{"yolo11n", "yolo", "8.4.190"}};
  e.image_sha256 = std::string(64, 'a');
  e.question = "how many people? " + std::to_string(i);
  e.transcript = "<think-observe>x</think-observe><final>" + std::to_string(i) + "</final>";
  e.final_answer = std::to_string(i);
  e.outcome = "answered";
  return e;
}

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void spit(const std::filesystem::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

inline std::vector<std::string> split_lines(const std::string& data) {
  std::vector<std::string> lines;
  std::istringstream in(data);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

inline std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

}  // namespace vlm::audit::testing
