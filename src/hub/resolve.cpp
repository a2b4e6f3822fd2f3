#include "vlm/hub/resolve.h"

#include "vlm/hub/pull.h"
#include "vlm/hub/repo_spec.h"
#include "vlm/logging.h"

namespace vlm::hub {

std::filesystem::path resolve_model_path(const std::string& spec, const HubOptions& options) {
  if (!is_hub_spec(spec)) return std::filesystem::path(spec);
  PullResult pulled = pull(parse_repo_spec(spec), options);
  log::info("{} -> {} (commit {})", spec, pulled.snapshot_dir.string(), pulled.commit);
  return pulled.snapshot_dir;
}

}  // namespace vlm::hub
