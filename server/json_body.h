#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace vlm::server {

// Deepest nesting a request body may have (the top-level object counts as 1). Copying, comparing
// and dumping a nlohmann value recurse once per level, so an unbounded depth is a stack overflow.
inline constexpr int kMaxJsonDepth = 64;

// Parses a request body; throws vlm::Error bad_json for invalid JSON or nesting deeper than
// kMaxJsonDepth. The parse stops at the first level over the limit, before building it.
nlohmann::json parse_json_body(std::string_view body);

// A rendering of a received value for an error message, at most about `max_chars` long whatever
// the value's size or depth: strings and scalars as sent (cut with "..."), containers by type and
// size ("an array of 3 items").
std::string describe_json(const nlohmann::json& value, std::size_t max_chars = 64);

// `text` in single quotes, cut to `max_chars` with "..." (parameter names, string values).
std::string quote_bounded(std::string_view text, std::size_t max_chars = 64);

}  // namespace vlm::server
