#include "image_input.h"

#include <array>
#include <cctype>

#include "json_body.h"
#include "vlm/error.h"

namespace vlm::server {
namespace {

void add_param(ImageInput& input, const ImageInputRules& rules, const std::string& name, nlohmann::json value) {
  if (!rules.allowed_params.contains(name)) {
    std::string known;
    for (const auto& allowed : rules.allowed_params) known += (known.empty() ? "" : ", ") + allowed;
    throw Error(ErrorCode::kUnknownParameter, "unknown parameter " + quote_bounded(name) + " (known: " + known + ")");
  }
  input.params[name] = std::move(value);
}

void add_image(ImageInput& input, const ImageInputRules& rules, std::string bytes) {
  if (input.images.size() >= rules.max_images) {
    throw Error(ErrorCode::kTooManyImages, "more than " + std::to_string(rules.max_images) + " images in one request");
  }
  input.images.push_back(std::move(bytes));
}

void parse_multipart(const HttpRequest& request, const ImageInputRules& rules, ImageInput& input) {
  for (const auto& part : request.form) {
    if (part.name == "image") {
      add_image(input, rules, part.content);
    } else {
      add_param(input, rules, part.name, part.content);
    }
  }
}

void parse_json(const HttpRequest& request, const ImageInputRules& rules, ImageInput& input) {
  nlohmann::json body = parse_json_body(request.body);
  if (!body.is_object())
    throw Error(ErrorCode::kBadJson, std::string("JSON body must be an object, got ") + body.type_name());
  for (auto& [key, value] : body.items()) {
    if (key == "image") {
      if (!value.is_string()) {
        throw Error(ErrorCode::kBadJson, std::string("\"image\" must be a base64 string, got ") + value.type_name());
      }
      add_image(input, rules, decode_base64(value.get_ref<const std::string&>()));
    } else if (key == "images") {
      if (!value.is_array()) {
        throw Error(ErrorCode::kBadJson,
                    std::string("\"images\" must be an array of base64 strings, got ") + value.type_name());
      }
      input.batch = true;
      for (const auto& item : value) {
        if (!item.is_string()) {
          throw Error(ErrorCode::kBadJson,
                      std::string("\"images\" items must be base64 strings, got ") + item.type_name());
        }
        add_image(input, rules, decode_base64(item.get_ref<const std::string&>()));
      }
    } else {
      add_param(input, rules, key, std::move(value));
    }
  }
}

}  // namespace

std::string media_type(const std::string& content_type) {
  std::string type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && std::isspace(static_cast<unsigned char>(type.back()))) type.pop_back();
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type;
}

std::string decode_base64(std::string_view text) {
  if (text.starts_with("data:")) {
    const auto comma = text.find(',');
    if (comma == std::string_view::npos || text.substr(0, comma).find(";base64") == std::string_view::npos) {
      throw Error(ErrorCode::kBadBase64, "data URL without ';base64,'");
    }
    text.remove_prefix(comma + 1);
  }
  static const std::array<int, 256> kTable = [] {
    std::array<int, 256> table{};
    table.fill(-1);
    const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::size_t i = 0; i < alphabet.size(); ++i)
      table[static_cast<unsigned char>(alphabet[i])] = static_cast<int>(i);
    table['-'] = 62;
    table['_'] = 63;
    return table;
  }();
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t buffer = 0;
  int bits = 0;
  std::size_t padding = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (std::isspace(c)) continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int value = kTable[c];
    if (value < 0 || padding > 0) {
      throw Error(ErrorCode::kBadBase64, "invalid base64 character at offset " + std::to_string(i));
    }
    buffer = (buffer << 6U) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> static_cast<unsigned>(bits)) & 0xFFU));
    }
  }
  // Six leftover bits cannot come from whole bytes; more than two '=' is no valid padding.
  if (bits >= 6 || padding > 2) throw Error(ErrorCode::kBadBase64, "base64 text has an impossible length");
  return out;
}

ImageInput parse_image_input(const HttpRequest& request, const ImageInputRules& rules) {
  ImageInput input;
  for (const auto& [key, value] : request.query) add_param(input, rules, key, value);

  const std::string type = media_type(request.header("Content-Type"));
  if (type == "multipart/form-data") {
    input.source = "multipart";
    parse_multipart(request, rules, input);
  } else if (type == "application/json") {
    input.source = "json";
    parse_json(request, rules, input);
  } else if (type.starts_with("image/") || type == "application/octet-stream") {
    input.source = "raw";
    add_image(input, rules, request.body);
  } else {
    throw Error(ErrorCode::kUnsupportedMediaType,
                "Content-Type '" + (type.empty() ? std::string("(none)") : type) +
                    "' is not accepted; send multipart/form-data, image/*, application/octet-stream "
                    "or application/json");
  }
  if (input.images.size() > 1) input.batch = true;
  if (input.images.empty()) {
    throw Error(ErrorCode::kMissingImage, input.source == "multipart" ? "no form field named 'image'"
                                          : input.source == "json"    ? "JSON body has no \"image\" or \"images\""
                                                                      : "empty request body");
  }
  return input;
}

}  // namespace vlm::server
