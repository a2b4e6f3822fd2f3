#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace vlm::cli {

enum class InputKind { kImage, kVideo, kStdin };

// One input to process: an image or video file, standard input ("-"), or a path that could not be
// expanded (error set).
struct InputFile {
  std::filesystem::path path;
  std::string error_code;  // empty when the path is usable
  std::string error_message;
  InputKind kind = InputKind::kImage;
};

// Files as given, quoted glob patterns expanded (glob_pattern.h; image and video files among the
// matches), image and video files inside folders (sorted; sub-folders only when recursive), and "-"
// for image bytes on standard input. A given file is an image unless its extension is a video's.
// Missing paths and patterns that match nothing become entries with an error, so the run goes on and
// reports them. Throws kInvalidArgument when nothing is left to process, when "-" is given twice, or
// when a folder has images only in sub-folders and `recursive` is off (the message names --recursive).
std::vector<InputFile> expand_inputs(const std::vector<std::string>& paths, bool recursive);

bool has_image_extension(const std::filesystem::path& path);
bool has_video_extension(const std::filesystem::path& path);

}  // namespace vlm::cli
