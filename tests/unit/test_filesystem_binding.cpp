// libtorch exports its own std::filesystem; executables must bind to libstdc++'s (see
// cmake/VlmTargets.cmake). This test links torch and exercises the calls that crashed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "vlm/safetensors.h"

namespace fs = std::filesystem;

TEST(FilesystemBinding, RemoveAllAndIterateInATorchLinkedBinary) {
  char pattern[] = "/tmp/vlm-fs-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  fs::path root(pattern);
  fs::create_directories(root / "a" / "b");
  std::ofstream(root / "a" / "b" / "file.txt") << "x";
  std::size_t count = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) count += entry.is_regular_file() ? 1 : 0;
  EXPECT_EQ(count, 1U);
  EXPECT_EQ(fs::remove_all(root), 4U);  // root, a, b, file.txt
  EXPECT_FALSE(fs::exists(root));
  // Keep a real dependency on torch-linked code so the link line matches the product's.
  EXPECT_EQ(vlm::safetensors_dtype_size(vlm::SafetensorsDtype::kBF16), 2U);
}
