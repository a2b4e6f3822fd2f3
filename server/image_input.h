#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "http_server.h"

namespace vlm::server {

// What an image endpoint received, before any image is decoded. Shared by every route that takes
// images (POST /detect today, POST /think later) so they accept the same three input forms.
struct ImageInput {
  std::vector<std::string> images;                   // encoded bytes, in the client's order
  nlohmann::json params = nlohmann::json::object();  // form fields / query (strings) or JSON values
  std::string source;                                // "multipart", "raw" or "json", for logs
  bool batch = false;  // several images, or a JSON "images" array: answer with {"results": [...]}
};

struct ImageInputRules {
  std::size_t max_images = 32;
  std::set<std::string, std::less<>> allowed_params;  // anything else is refused with 422
};

// Accepts multipart/form-data (field `image`, repeatable), a raw `image/*` or
// `application/octet-stream` body, or JSON {"image": "<base64>"} / {"images": [...]}.
// Query-string parameters apply to all three; a body parameter of the same name wins.
// Throws vlm::Error: bad_json, bad_base64, missing_image, too_many_images, unsupported_media_type,
// unknown_parameter.
ImageInput parse_image_input(const HttpRequest& request, const ImageInputRules& rules);

// The media type of a Content-Type value, lower-cased, without parameters ("image/jpeg; q=1" -> "image/jpeg").
std::string media_type(const std::string& content_type);

// RFC 4648 base64 (standard or URL-safe alphabet, padding optional, whitespace ignored); an
// optional "data:<type>;base64," prefix is skipped. Throws vlm::Error bad_base64 naming the offset.
std::string decode_base64(std::string_view text);

}  // namespace vlm::server
