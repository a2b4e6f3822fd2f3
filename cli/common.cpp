#include "common.h"

#include <cmath>
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
  log::LoggingOptions logging;
  logging.level = log::parse_level(settings.get("log-level"));
  std::string format = settings.get("log-format");
  if (format != "text" && format != "json") {
    throw Error(ErrorCode::kInvalidArgument, "--log-format must be text or json, got '" + format + "'");
  }
  logging.json = format == "json";
  log::configure(logging);
}

ModelOptions model_options(const Settings& settings) {
  ModelOptions options;
  options.device = settings.get("device");
  options.half = settings.get_bool("half");
  options.attention = settings.get("attention");
  set_default_attention_backend_by_name(options.attention);
  long threads = settings.get_int("threads");
  if (threads < 0 || threads > 1024) {
    throw Error(ErrorCode::kInvalidArgument, "--threads must be in [0, 1024], got " + std::to_string(threads));
  }
  if (threads > 0) set_cpu_threads(static_cast<int>(threads));
  return options;
}

DetectOptions detect_options(const Settings& settings) {
  DetectOptions options;
  options.conf = static_cast<float>(settings.get_float("conf"));
  options.iou = static_cast<float>(settings.get_float("iou"));
  options.max_det = static_cast<int>(settings.get_int("max-det"));
  options.agnostic_nms = settings.get_bool("agnostic-nms");
  for (const std::string& id : settings.get_list("classes")) {
    try {
      std::size_t used = 0;
      int value = std::stoi(id, &used);
      if (used != id.size()) throw std::invalid_argument(id);
      options.classes.push_back(value);
    } catch (const std::exception&) {
      throw Error(ErrorCode::kInvalidArgument, "--classes must be integer class ids, got '" + id + "'");
    }
  }
  if (settings.command() == "detect") {
    options.task = settings.get("task");
    options.text = settings.get("text");
  }
  validate(options);
  return options;
}

ImageLoadOptions image_load_options(const Settings& settings) {
  double max_pixels = settings.get_float("max-pixels");
  if (!std::isfinite(max_pixels) || max_pixels < 1 || max_pixels > 1e12) {
    throw Error(ErrorCode::kInvalidArgument, "--max-pixels must be in [1, 1e12], got " + settings.get("max-pixels"));
  }
  return ImageLoadOptions{static_cast<std::uint64_t>(max_pixels)};
}

int report_fatal(const std::exception& error) {
  std::cerr << "vlmserve: error: " << error.what() << '\n';
  const auto* typed = dynamic_cast<const Error*>(&error);
  return typed != nullptr ? exit_status(typed->code()) : kExitFailure;
}

}  // namespace vlm::cli
