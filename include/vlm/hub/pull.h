#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "vlm/hub/hub_options.h"
#include "vlm/hub/repo_spec.h"

namespace vlm::hub {

struct PullResult {
  std::filesystem::path snapshot_dir;  // the folder to hand to load_model
  std::string commit;
  std::vector<std::string> files;  // relative paths inside snapshot_dir
  std::uint64_t bytes_downloaded = 0;
  bool from_cache = false;  // nothing was fetched
};

// Downloads what the model's loader needs at `spec` into options.cache_dir (or finds it cached).
// Offline, resolves from the caches alone and throws kNotFound saying what is missing.
PullResult pull(const RepoSpec& spec, const HubOptions& options);

}  // namespace vlm::hub
