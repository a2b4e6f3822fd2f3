#include "input_files.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "vlm/error.h"

namespace vlm::cli {
namespace {

constexpr std::array<std::string_view, 8> kExtensions = {".jpg",  ".jpeg", ".png",  ".bmp",
                                                         ".webp", ".tif",  ".tiff", ".jpe"};

std::string extension_list() {
  std::string out;
  for (std::string_view ext : kExtensions) out += (out.empty() ? "" : " ") + std::string(ext);
  return out;
}

bool is_image_file(const std::filesystem::directory_entry& entry) {
  std::error_code ec;
  return entry.is_regular_file(ec) && has_image_extension(entry.path());
}

// Whether any sub-folder of `folder` holds an image; stops at the first one found.
bool has_images_below(const std::filesystem::path& folder) {
  std::error_code ec;
  auto options = std::filesystem::directory_options::skip_permission_denied;
  for (auto it = std::filesystem::recursive_directory_iterator(folder, options, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 0 && is_image_file(*it)) return true;
  }
  return false;
}

}  // namespace

bool has_image_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::find(kExtensions.begin(), kExtensions.end(), ext) != kExtensions.end();
}

std::vector<InputFile> expand_inputs(const std::vector<std::string>& paths, bool recursive) {
  std::vector<InputFile> inputs;
  for (const std::string& text : paths) {
    std::filesystem::path path(text);
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      std::vector<std::filesystem::path> found;
      auto collect = [&](const std::filesystem::directory_entry& entry) {
        if (is_image_file(entry)) found.push_back(entry.path());
      };
      auto options = std::filesystem::directory_options::skip_permission_denied;
      if (recursive) {
        for (const auto& entry : std::filesystem::recursive_directory_iterator(path, options, ec)) collect(entry);
      } else {
        for (const auto& entry : std::filesystem::directory_iterator(path, options, ec)) collect(entry);
      }
      if (ec) {
        inputs.push_back({path, "io_error", "cannot list folder " + text + ": " + ec.message()});
        continue;
      }
      // Skipping the folder would report "0 images" for what is almost always a missing flag.
      if (found.empty() && !recursive && has_images_below(path)) {
        throw Error(ErrorCode::kInvalidArgument, "folder " + text +
                                                     " has no images directly in it, but its sub-folders do: add "
                                                     "--recursive to detect on those");
      }
      std::sort(found.begin(), found.end());
      for (auto& file : found) inputs.push_back({std::move(file), "", ""});
    } else if (std::filesystem::exists(path, ec)) {
      inputs.push_back({path, "", ""});
    } else {
      inputs.push_back({path, "not_found", "no such file or folder: " + text});
    }
  }
  if (inputs.empty()) {
    // Only folders can expand to nothing: every path given is one.
    std::string folders;
    for (const std::string& text : paths) folders += (folders.empty() ? "" : ", ") + text;
    throw Error(ErrorCode::kInvalidArgument,
                "no input images: " + folders + " holds no files with an image extension (" + extension_list() + ")");
  }
  return inputs;
}

}  // namespace vlm::cli
