#include "input_files.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace vlm::cli {

bool has_image_extension(const std::filesystem::path& path) {
  static constexpr std::array<std::string_view, 8> kExtensions = {".jpg",  ".jpeg", ".png",  ".bmp",
                                                                  ".webp", ".tif",  ".tiff", ".jpe"};
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
        std::error_code entry_ec;
        if (entry.is_regular_file(entry_ec) && has_image_extension(entry.path())) found.push_back(entry.path());
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
      std::sort(found.begin(), found.end());
      for (auto& file : found) inputs.push_back({std::move(file), "", ""});
    } else if (std::filesystem::exists(path, ec)) {
      inputs.push_back({path, "", ""});
    } else {
      inputs.push_back({path, "not_found", "no such file or folder: " + text});
    }
  }
  return inputs;
}

}  // namespace vlm::cli
