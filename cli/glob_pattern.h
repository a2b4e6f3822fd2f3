#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

namespace vlm::cli {

// Whether `text` holds a wildcard (*, ? or [) and so is a pattern rather than a path.
bool is_glob(std::string_view text);

// Files and folders matching `pattern`, sorted. Each path component is matched with fnmatch(3)
// (a leading '.' only by a pattern that starts with one); a "**" component matches any number of
// folders, itself included, as Python's glob(recursive=True) does, so quoted patterns behave the
// same in every shell. Unreadable folders are skipped.
std::vector<std::filesystem::path> expand_glob(std::string_view pattern);

}  // namespace vlm::cli
