#pragma once

#include <string>
#include <string_view>

namespace vlm::hub {

inline constexpr std::string_view kHubScheme = "hf://";

// A model repository on the hub at one revision: `hf://ORG/REPO[@REVISION]`.
struct RepoSpec {
  std::string repo_id;            // "org/repo"
  std::string revision = "main";  // branch, tag or 40-hex commit

  std::string to_string() const;  // back to "hf://org/repo@revision"
};

bool is_hub_spec(std::string_view spec);
// Throws vlm::Error kInvalidArgument naming the part of the spec that is wrong.
RepoSpec parse_repo_spec(std::string_view spec);
bool is_commit_hash(std::string_view revision);

}  // namespace vlm::hub
