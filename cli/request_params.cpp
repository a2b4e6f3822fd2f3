#include "request_params.h"

#include <map>

#include "option_table.h"
#include "option_value.h"
#include "vlm/error.h"

namespace vlm::cli {
namespace {

constexpr const char* kModelParam = "model";

// Request key -> table entry, built once.
const std::map<std::string, const OptionSpec*, std::less<>>& request_options() {
  static const auto kByKey = [] {
    std::map<std::string, const OptionSpec*, std::less<>> out;
    for (const OptionSpec& spec : option_table()) {
      if (spec.request_settable()) out.emplace(config_key(spec), &spec);
    }
    return out;
  }();
  return kByKey;
}

}  // namespace

DetectRequestParams parse_detect_params(const nlohmann::json& params, const DetectOptions& defaults) {
  DetectRequestParams out;
  out.options = defaults;
  for (const auto& [name, value] : params.items()) {
    if (name == kModelParam) {
      if (!value.is_string()) {
        throw Error(ErrorCode::kInvalidArgument, "model must be a string, got " + describe_value(value));
      }
      out.model = value.get<std::string>();
      continue;
    }
    const auto it = request_options().find(name);
    // parse_image_input refuses unknown names first; this guards callers that skip it.
    if (it == request_options().end()) {
      throw Error(ErrorCode::kInvalidArgument, "unknown parameter " + describe_value(name));
    }
    assign_value(*it->second, it->second->binding.request_field(out.options), value, name);
  }
  validate(out.options);
  return out;
}

const std::set<std::string, std::less<>>& detect_param_names() {
  static const auto kNames = [] {
    std::set<std::string, std::less<>> names{kModelParam};
    for (const auto& [key, spec] : request_options()) names.insert(key);
    return names;
  }();
  return kNames;
}

}  // namespace vlm::cli
