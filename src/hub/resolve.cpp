#include "vlm/hub/resolve.h"

#include <string>
#include <vector>

#include "vlm/error.h"
#include "vlm/hub/pull.h"
#include "vlm/hub/repo_spec.h"
#include "vlm/logging.h"

namespace vlm::hub {
namespace {

// The loaders take a Hugging Face folder, or a YOLO export as the file itself.
std::filesystem::path model_path_in(const PullResult& pulled, const std::string& spec) {
  std::vector<std::string> exports;
  bool has_config = false;
  for (const std::string& file : pulled.files) {
    has_config = has_config || file == "config.json";
    if (file.find('/') == std::string::npos && file.ends_with(".torchscript")) exports.push_back(file);
  }
  if (has_config || exports.empty()) return pulled.snapshot_dir;
  if (exports.size() == 1) return pulled.snapshot_dir / exports.front();
  std::string listed;
  for (const std::string& name : exports) listed += (listed.empty() ? "" : ", ") + name;
  throw Error(ErrorCode::kInvalidArgument, spec + " holds several TorchScript exports (" + listed +
                                               "); pass one by path: --model NAME=" + pulled.snapshot_dir.string() +
                                               "/<file>");
}

}  // namespace

std::filesystem::path resolve_model_path(const std::string& spec, const HubOptions& options) {
  if (!is_hub_spec(spec)) return std::filesystem::path(spec);
  PullResult pulled = pull(parse_repo_spec(spec), options);
  std::filesystem::path path = model_path_in(pulled, spec);
  log::info("{} -> {} (commit {})", spec, path.string(), pulled.commit);
  return path;
}

}  // namespace vlm::hub
