#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "vlm/model.h"

namespace vlm::server {

// POST /detect parameters after type checks. Values arrive as JSON values (JSON bodies) or as
// strings (query, form fields); both spellings mean the same.
struct DetectRequestParams {
  std::string model;  // empty: the default model
  DetectOptions options;
};

// Throws vlm::Error invalid_argument naming the parameter and the value received.
// Parameters not sent keep their value from `defaults` (the server's --conf, --iou, ...).
DetectRequestParams parse_detect_params(const nlohmann::json& params, const DetectOptions& defaults);

}  // namespace vlm::server
