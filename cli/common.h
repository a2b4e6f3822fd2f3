#pragma once

#include <exception>
#include <string>

#include "settings.h"
#include "vlm/image.h"
#include "vlm/model.h"

namespace vlm::cli {

// A --model value: "PATH" or "NAME=PATH"; the name defaults to the file or folder name.
struct ModelSpec {
  std::string name;
  std::string path;
};
ModelSpec parse_model_spec(const std::string& text);

// Logging, thread count and the default attention backend, from the common options.
void apply_process_settings(const Settings& settings);
ModelOptions model_options(const Settings& settings);
DetectOptions detect_options(const Settings& settings);
ImageLoadOptions image_load_options(const Settings& settings);

// Prints "vlmserve: error: <message>" to stderr and returns the exit status: a vlm::Error's from the
// error table, kExitFailure for anything else.
int report_fatal(const std::exception& error);

}  // namespace vlm::cli
