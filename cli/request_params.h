#pragma once

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "vlm/model.h"

namespace vlm::cli {

// POST /detect parameters after type and range checks: the option table's request-settable entries
// (conf, iou, max_det, classes, agnostic_nms, task, text) plus `model`, which names the served model.
// Values arrive as JSON values (JSON bodies) or as strings (query, form fields); both read the same,
// and the same as the flag of the same option.
struct DetectRequestParams {
  std::string model;  // empty: the default model
  DetectOptions options;
};

// Parameters not sent keep their value from `defaults` (the server's --conf, --iou, ...). Throws
// Error kInvalidArgument naming the parameter and the value received.
DetectRequestParams parse_detect_params(const nlohmann::json& params, const DetectOptions& defaults);

// Every parameter name POST /detect accepts.
const std::set<std::string, std::less<>>& detect_param_names();

}  // namespace vlm::cli
