#include "vlm/hub/repo_spec.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "vlm/error.h"

namespace vlm::hub {
namespace {

constexpr std::size_t kMaxNameLength = 96;  // the hub's own limit on a user or repository name

// The hub's name rules: letters, digits, '-', '_', '.'; no "--" or ".." (they would collide with
// the cache's "models--org--repo" separator or escape a folder); no leading or trailing '-' / '.'.
bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  bool chars_ok = std::all_of(name.begin(), name.end(),
                              [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; });
  if (!chars_ok) return false;
  if (name.find("--") != std::string_view::npos || name.find("..") != std::string_view::npos) return false;
  auto edge_ok = [](char c) { return c != '-' && c != '.'; };
  return edge_ok(name.front()) && edge_ok(name.back());
}

bool is_valid_revision(std::string_view revision) {
  if (revision.empty() || revision.size() > 255) return false;
  if (revision.front() == '/' || revision.back() == '/') return false;
  if (revision.find("..") != std::string_view::npos || revision.find("//") != std::string_view::npos) return false;
  return std::all_of(revision.begin(), revision.end(),
                     [](unsigned char c) { return std::isgraph(c) && c != '\\' && c != '?' && c != '#' && c != '%'; });
}

[[noreturn]] void fail(std::string_view spec, std::string_view why) {
  throw Error(ErrorCode::kInvalidArgument, "model spec '" + std::string(spec) + "': " + std::string(why) +
                                               " (expected hf://ORG/REPO or hf://ORG/REPO@REVISION)");
}

}  // namespace

std::string RepoSpec::to_string() const { return std::string(kHubScheme) + repo_id + "@" + revision; }

bool is_hub_spec(std::string_view spec) { return spec.substr(0, kHubScheme.size()) == kHubScheme; }

bool is_commit_hash(std::string_view revision) {
  return revision.size() == 40 && std::all_of(revision.begin(), revision.end(), [](unsigned char c) {
           return std::isdigit(c) || (c >= 'a' && c <= 'f');
         });
}

RepoSpec parse_repo_spec(std::string_view spec) {
  if (!is_hub_spec(spec)) fail(spec, "does not start with hf://");
  std::string_view rest = spec.substr(kHubScheme.size());
  RepoSpec parsed;
  if (std::size_t at = rest.find('@'); at != std::string_view::npos) {
    parsed.revision = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!is_valid_revision(parsed.revision))
      fail(spec, "revision '" + parsed.revision + "' is not a valid branch, tag or commit");
  }
  std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) fail(spec, "repository '" + std::string(rest) + "' has no ORG/ part");
  std::string_view org = rest.substr(0, slash);
  std::string_view name = rest.substr(slash + 1);
  if (!is_valid_name(org)) fail(spec, "organisation '" + std::string(org) + "' is not a valid hub name");
  if (!is_valid_name(name)) fail(spec, "repository name '" + std::string(name) + "' is not a valid hub name");
  parsed.repo_id = std::string(rest);
  return parsed;
}

}  // namespace vlm::hub
