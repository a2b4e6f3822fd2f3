#include "json_body.h"

#include "vlm/error.h"

namespace vlm::server {
namespace {

struct TooDeep {};

}  // namespace

nlohmann::json parse_json_body(std::string_view body) {
  // The callback sees each container as it opens, at the depth of its parent; throwing there
  // aborts the parse with at most kMaxJsonDepth levels built.
  const nlohmann::json::parser_callback_t limit_depth = [](int depth, nlohmann::json::parse_event_t event,
                                                           nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      throw TooDeep{};
    }
    return true;
  };
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(body, limit_depth, false);
  } catch (const TooDeep&) {
    throw Error(ErrorCode::kBadJson, "JSON body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels (" +
                                         std::to_string(body.size()) + " bytes)");
  }
  if (parsed.is_discarded()) {
    throw Error(ErrorCode::kBadJson, "request body is not valid JSON (" + std::to_string(body.size()) + " bytes)");
  }
  return parsed;
}

std::string quote_bounded(std::string_view text, std::size_t max_chars) {
  if (text.size() <= max_chars) return "'" + std::string(text) + "'";
  return "'" + std::string(text.substr(0, max_chars)) + "...'";
}

std::string describe_json(const nlohmann::json& value, std::size_t max_chars) {
  if (value.is_string()) return quote_bounded(value.get_ref<const std::string&>(), max_chars);
  if (value.is_array()) return "an array of " + std::to_string(value.size()) + (value.size() == 1 ? " item" : " items");
  if (value.is_object()) return "an object of " + std::to_string(value.size()) + (value.size() == 1 ? " key" : " keys");
  // Numbers, booleans and null: a scalar's dump is short and never recurses.
  return quote_bounded(value.dump(), max_chars);
}

}  // namespace vlm::server
