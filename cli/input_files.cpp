#include "input_files.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "glob_pattern.h"
#include "vlm/error.h"

namespace vlm::cli {
namespace {

constexpr std::array<std::string_view, 8> kExtensions = {".jpg",  ".jpeg", ".png",  ".bmp",
                                                         ".webp", ".tif",  ".tiff", ".jpe"};
// Containers the FFmpeg backend of OpenCV's videoio reads (Ultralytics' list, less .gif and .asf).
constexpr std::array<std::string_view, 10> kVideoExtensions = {".mp4",  ".avi",  ".mkv", ".mov", ".m4v",
                                                               ".webm", ".mpeg", ".mpg", ".ts",  ".wmv"};

std::string extension_list() {
  std::string out;
  for (std::string_view ext : kExtensions) out += (out.empty() ? "" : " ") + std::string(ext);
  for (std::string_view ext : kVideoExtensions) out += " " + std::string(ext);
  return out;
}

std::string lower_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

bool is_media_file(const std::filesystem::directory_entry& entry) {
  std::error_code ec;
  return entry.is_regular_file(ec) && (has_image_extension(entry.path()) || has_video_extension(entry.path()));
}

InputFile media_input(std::filesystem::path path) {
  InputKind kind = has_video_extension(path) ? InputKind::kVideo : InputKind::kImage;
  return {std::move(path), "", "", kind};
}

// Whether any sub-folder of `folder` holds an image or video; stops at the first one found.
bool has_media_below(const std::filesystem::path& folder) {
  std::error_code ec;
  auto options = std::filesystem::directory_options::skip_permission_denied;
  for (auto it = std::filesystem::recursive_directory_iterator(folder, options, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 0 && is_media_file(*it)) return true;
  }
  return false;
}

void add_folder(const std::filesystem::path& path, const std::string& text, bool recursive,
                std::vector<InputFile>& inputs) {
  std::error_code ec;
  std::vector<std::filesystem::path> found;
  auto collect = [&](const std::filesystem::directory_entry& entry) {
    if (is_media_file(entry)) found.push_back(entry.path());
  };
  auto options = std::filesystem::directory_options::skip_permission_denied;
  if (recursive) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path, options, ec)) collect(entry);
  } else {
    for (const auto& entry : std::filesystem::directory_iterator(path, options, ec)) collect(entry);
  }
  if (ec) {
    inputs.push_back({path, "io_error", "cannot list folder " + text + ": " + ec.message()});
    return;
  }
  // Skipping the folder would report "0 images" for what is almost always a missing flag.
  if (found.empty() && !recursive && has_media_below(path)) {
    throw Error(ErrorCode::kInvalidArgument, "folder " + text +
                                                 " has no images directly in it, but its sub-folders do: add "
                                                 "--recursive to detect on those");
  }
  std::sort(found.begin(), found.end());
  for (auto& file : found) inputs.push_back(media_input(std::move(file)));
}

void add_glob(const std::string& pattern, std::vector<InputFile>& inputs) {
  std::size_t before = inputs.size();
  std::error_code ec;
  for (auto& match : expand_glob(pattern)) {
    if (std::filesystem::is_regular_file(match, ec) && (has_image_extension(match) || has_video_extension(match))) {
      inputs.push_back(media_input(std::move(match)));
    }
  }
  if (inputs.size() == before) {
    inputs.push_back({pattern, "not_found", "no image or video file matches the pattern " + pattern});
  }
}

}  // namespace

bool has_image_extension(const std::filesystem::path& path) {
  std::string ext = lower_extension(path);
  return std::find(kExtensions.begin(), kExtensions.end(), ext) != kExtensions.end();
}

bool has_video_extension(const std::filesystem::path& path) {
  std::string ext = lower_extension(path);
  return std::find(kVideoExtensions.begin(), kVideoExtensions.end(), ext) != kVideoExtensions.end();
}

std::vector<InputFile> expand_inputs(const std::vector<std::string>& paths, bool recursive) {
  std::vector<InputFile> inputs;
  bool stdin_taken = false;
  for (const std::string& text : paths) {
    std::filesystem::path path(text);
    std::error_code ec;
    if (text == "-") {
      if (stdin_taken) throw Error(ErrorCode::kInvalidArgument, "'-' (standard input) is given more than once");
      stdin_taken = true;
      inputs.push_back({"-", "", "", InputKind::kStdin});
    } else if (std::filesystem::is_directory(path, ec)) {
      add_folder(path, text, recursive, inputs);
    } else if (std::filesystem::exists(path, ec)) {
      inputs.push_back(media_input(path));
    } else if (is_glob(text)) {
      add_glob(text, inputs);
    } else {
      inputs.push_back({path, "not_found", "no such file or folder: " + text});
    }
  }
  if (inputs.empty()) {
    // Only folders can expand to nothing: every path given is one.
    std::string folders;
    for (const std::string& text : paths) folders += (folders.empty() ? "" : ", ") + text;
    throw Error(
        ErrorCode::kInvalidArgument,
        "no input images: " + folders + " holds no files with an image or video extension (" + extension_list() + ")");
  }
  return inputs;
}

}  // namespace vlm::cli
