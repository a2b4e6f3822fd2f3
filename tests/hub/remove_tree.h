#pragma once

#include <ftw.h>

#include <cstdio>
#include <filesystem>

namespace vlm::hub::testing {

// std::filesystem::remove_all must not be called in binaries linked with libtorch: libtorch.so
// exports its own copy of that symbol, which jumps to address 0 (torch 2.11.0 wheel).
inline void remove_tree(const std::filesystem::path& path) {
  ::nftw(
      path.c_str(), [](const char* entry, const struct stat*, int, struct FTW*) { return std::remove(entry); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

}  // namespace vlm::hub::testing
