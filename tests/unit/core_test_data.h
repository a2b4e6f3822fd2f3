// Where tests/unit/core_fixtures.py wrote its files, and small readers for them.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vlm::test {

inline std::filesystem::path core_data() {
  const char* root = std::getenv("VLM_TEST_DATA");
  if (root == nullptr) throw std::runtime_error("VLM_TEST_DATA is not set; run through ctest");
  return std::filesystem::path(root) / "core";
}

inline std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return nlohmann::json::parse(in);
}

}  // namespace vlm::test
