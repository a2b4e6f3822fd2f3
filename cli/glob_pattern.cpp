#include "glob_pattern.h"

#include <fnmatch.h>

#include <algorithm>
#include <string>

namespace vlm::cli {
namespace {

namespace fs = std::filesystem;

void match_from(const fs::path& base, const std::vector<std::string>& parts, std::size_t index,
                std::vector<fs::path>& out) {
  std::error_code ec;
  if (index == parts.size()) {
    if (fs::exists(base, ec)) out.push_back(base);
    return;
  }
  const std::string& part = parts[index];
  const fs::path folder = base.empty() ? fs::path(".") : base;
  if (part == "**") {
    match_from(base, parts, index + 1, out);
    auto options = fs::directory_options::skip_permission_denied;
    for (auto it = fs::recursive_directory_iterator(folder, options, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      // Hidden folders stay out, as in Python's glob.
      if (it->path().filename().string().starts_with('.')) {
        it.disable_recursion_pending();
        continue;
      }
      if (it->is_directory(ec)) match_from(base / fs::relative(it->path(), folder, ec), parts, index + 1, out);
    }
    return;
  }
  if (!is_glob(part)) {
    match_from(base / part, parts, index + 1, out);
    return;
  }
  for (auto it = fs::directory_iterator(folder, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (fnmatch(part.c_str(), name.c_str(), FNM_PERIOD) == 0) match_from(base / name, parts, index + 1, out);
  }
}

}  // namespace

bool is_glob(std::string_view text) { return text.find_first_of("*?[") != std::string_view::npos; }

std::vector<fs::path> expand_glob(std::string_view pattern) {
  std::vector<std::string> parts;
  fs::path base;
  std::string text(pattern);
  if (text.starts_with('/')) base = "/";
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t slash = text.find('/', start);
    if (slash == std::string::npos) slash = text.size();
    if (slash > start) parts.push_back(text.substr(start, slash - start));
    start = slash + 1;
  }
  std::vector<fs::path> out;
  match_from(base, parts, 0, out);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace vlm::cli
