#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace vlm::cli {

// One input to process: a file, or a path that could not be expanded (error set).
struct InputFile {
  std::filesystem::path path;
  std::string error_code;  // empty when the path is usable
  std::string error_message;
};

// Files as given, and image files inside folders (sorted; sub-folders only when recursive).
// Missing paths become entries with an error, so the run goes on and reports them. Throws
// kInvalidArgument when nothing is left to process, or when a folder has images only in
// sub-folders and `recursive` is off (the message names --recursive).
std::vector<InputFile> expand_inputs(const std::vector<std::string>& paths, bool recursive);

bool has_image_extension(const std::filesystem::path& path);

}  // namespace vlm::cli
