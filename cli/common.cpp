#include "common.h"

#include <filesystem>
#include <iostream>

#include "vlm/error.h"
#include "vlm/logging.h"
#include "vlm/runtime.h"

namespace vlm::cli {

ModelSpec parse_model_spec(const std::string& text) {
  ModelSpec spec;
  std::size_t equals = text.find('=');
  // A '=' after a '/' is part of a path, not a NAME= prefix.
  if (equals != std::string::npos && text.find('/') > equals && equals > 0) {
    spec.name = text.substr(0, equals);
    spec.path = text.substr(equals + 1);
  } else {
    spec.path = text;
    std::filesystem::path path(text);
    spec.name = path.has_filename() ? path.stem().string() : path.parent_path().filename().string();
  }
  if (spec.path.empty()) throw Error(ErrorCode::kInvalidArgument, "--model '" + text + "' names no path");
  return spec;
}

void apply_process_settings(const Settings& settings) {
  const LogSettings& options = settings.options().log;
  log::LoggingOptions logging;
  logging.level = log::parse_level(options.level);
  if (options.format != "text" && options.format != "json") {
    throw Error(ErrorCode::kInvalidArgument, "--log-format must be text or json, got '" + options.format + "'");
  }
  logging.json = options.format == "json";
  log::configure(logging);
}

ModelOptions model_options(const Settings& settings) {
  const Options& options = settings.options();
  set_default_attention_backend_by_name(options.model.attention);
  set_flash_autotune(options.model.flash_autotune);
  if (options.threads > 0) set_cpu_threads(options.threads);
  return options.model;
}

DetectOptions detect_options(const Settings& settings) {
  validate(settings.options().detect);
  return settings.options().detect;
}

ImageLoadOptions image_load_options(const Settings& settings) {
  return ImageLoadOptions{static_cast<std::uint64_t>(settings.options().max_pixels)};
}

int report_fatal(const std::exception& error) {
  std::cerr << "vlmserve: error: " << error.what() << '\n';
  const auto* typed = dynamic_cast<const Error*>(&error);
  return typed != nullptr ? exit_status(typed->code()) : kExitFailure;
}

}  // namespace vlm::cli
