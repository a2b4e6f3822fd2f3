#include "detect_params.h"

#include <charconv>
#include <cmath>

#include "json_body.h"
#include "vlm/error.h"

namespace vlm::server {
namespace {

[[noreturn]] void invalid(const std::string& name, const std::string& expected, const nlohmann::json& got) {
  throw Error(ErrorCode::kInvalidArgument, name + " must be " + expected + ", got " + describe_json(got));
}

double to_number(const std::string& name, const nlohmann::json& value, const std::string& expected) {
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    double parsed = 0.0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed);
    if (error == std::errc() && end == text.data() + text.size() && !text.empty()) return parsed;
  }
  invalid(name, expected, value);
}

double in_range(const std::string& name, const nlohmann::json& value, double low, double high) {
  const std::string expected = "a number in [" + nlohmann::json(low).dump() + ", " + nlohmann::json(high).dump() + "]";
  const double number = to_number(name, value, expected);
  if (!std::isfinite(number) || number < low || number > high) invalid(name, expected, value);
  return number;
}

int integer_in_range(const std::string& name, const nlohmann::json& value, int low, int high) {
  const std::string expected = "an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "]";
  const double number = to_number(name, value, expected);
  if (!std::isfinite(number) || number != std::floor(number) || number < low || number > high) {
    invalid(name, expected, value);
  }
  return static_cast<int>(number);
}

bool to_bool(const std::string& name, const nlohmann::json& value) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text == "true" || text == "1") return true;
    if (text == "false" || text == "0") return false;
  }
  invalid(name, "true or false", value);
}

std::string to_string(const std::string& name, const nlohmann::json& value) {
  if (!value.is_string()) invalid(name, "a string", value);
  return value.get<std::string>();
}

std::vector<int> to_classes(const nlohmann::json& value) {
  const std::string expected = "class ids (a JSON array of integers or a comma-separated list)";
  std::vector<int> classes;
  if (value.is_array()) {
    for (const auto& item : value) classes.push_back(integer_in_range("classes", item, 0, 1'000'000));
  } else if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    std::size_t start = 0;
    while (start <= text.size()) {
      const std::size_t comma = std::min(text.find(',', start), text.size());
      std::string item = text.substr(start, comma - start);
      while (!item.empty() && item.front() == ' ') item.erase(item.begin());
      while (!item.empty() && item.back() == ' ') item.pop_back();
      if (item.empty()) invalid("classes", expected, value);
      classes.push_back(integer_in_range("classes", item, 0, 1'000'000));
      start = comma + 1;
    }
  } else if (value.is_number()) {
    classes.push_back(integer_in_range("classes", value, 0, 1'000'000));
  } else {
    invalid("classes", expected, value);
  }
  return classes;
}

}  // namespace

DetectRequestParams parse_detect_params(const nlohmann::json& params, const DetectOptions& defaults) {
  DetectRequestParams out;
  out.options = defaults;
  for (const auto& [name, value] : params.items()) {
    if (name == "model") {
      out.model = to_string(name, value);
    } else if (name == "conf") {
      out.options.conf = static_cast<float>(in_range(name, value, 0.0, 1.0));
    } else if (name == "iou") {
      out.options.iou = static_cast<float>(in_range(name, value, 0.0, 1.0));
    } else if (name == "max_det") {
      out.options.max_det = integer_in_range(name, value, 1, 10'000);
    } else if (name == "classes") {
      out.options.classes = to_classes(value);
    } else if (name == "agnostic_nms") {
      out.options.agnostic_nms = to_bool(name, value);
    } else if (name == "task") {
      out.options.task = to_string(name, value);
    } else if (name == "text") {
      out.options.text = to_string(name, value);
    } else {
      throw Error(ErrorCode::kUnknownParameter, "unknown parameter " + quote_bounded(name));
    }
  }
  validate(out.options);
  return out;
}

}  // namespace vlm::server
