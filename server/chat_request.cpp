#include "chat_request.h"

#include "vlm/model.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <string_view>

#include "errors.h"
#include "json_body.h"

namespace vlm::server {
namespace {

using Json = nlohmann::json;

// OpenAI fields that cannot change the answer of a vision model served here: accepted, ignored.
const std::set<std::string, std::less<>> kIgnoredFields = {
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "user",
    "metadata",
    "store",
    "service_tier",
    "parallel_tool_calls",
    "prompt_cache_key",
    "safety_identifier",
};

// OpenAI fields vlmserve cannot honour: accepted only at their "off" value, so that a client never
// gets an answer it did not ask for (two choices, a tool call, a cut-off it set).
bool is_off(std::string_view field, const Json& value) {
  if (value.is_null()) return true;
  if (field == "n") return value.is_number_integer() && value.get<std::int64_t>() == 1;
  if (field == "logprobs") return value.is_boolean() && !value.get<bool>();
  if (field == "tools" || field == "functions") return value.is_array() && value.empty();
  if (field == "tool_choice" || field == "function_call")
    return value.is_string() && value.get<std::string>() == "none";
  if (field == "logit_bias") return value.is_object() && value.empty();
  if (field == "response_format")
    return value.is_object() && value.size() == 1 && value.value("type", Json()) == "text";
  if (field == "modalities") return value == Json::array({"text"});
  return false;  // top_logprobs, stop, audio, prediction, reasoning_effort, ...
}

const std::set<std::string, std::less<>> kRefusedFields = {
    "n",
    "logprobs",
    "top_logprobs",
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "stop",
    "audio",
    "prediction",
    "modalities",
    "logit_bias",
    "response_format",
    "reasoning_effort",
    "web_search_options",
    "verbosity",
};

std::string why_refused(std::string_view field) {
  if (field == "n") return "vlmserve answers one choice per request; send n = 1 or leave it out";
  if (field == "tools" || field == "tool_choice" || field == "functions" || field == "function_call") {
    return "the vision models served here do not call tools";
  }
  return "vlmserve does not support it; leave it out";
}

const std::set<std::string, std::less<>> kRoles = {"system", "developer", "user", "assistant", "tool", "function"};

[[noreturn]] void shape_error(const std::string& field, const std::string& message) {
  throw FieldError(ErrorCode::kBadJson, field, field + " " + message);
}

const Json& require(const Json& object, const char* key, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end()) shape_error(where + "." + key, "is missing");
  return *it;
}

void read_parts(const Json& content, const std::string& where, ChatRequest& out) {
  for (std::size_t i = 0; i < content.size(); ++i) {
    const Json& part = content[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!part.is_object()) shape_error(at, "must be a content part object, got " + describe_json(part));
    const Json& type = require(part, "type", at);
    if (type == "text") {
      const Json& text = require(part, "text", at);
      if (!text.is_string()) shape_error(at + ".text", "must be a string, got " + describe_json(text));
      if (out.prompt) {
        throw FieldError(ErrorCode::kInvalidArgument, at,
                         at + " is a second text part; send the task and its text as one text part");
      }
      out.prompt = text.get<std::string>();
    } else if (type == "image_url") {
      const Json& image = require(part, "image_url", at);
      // OpenAI sends {"url": ...}; some clients send the URL itself.
      const Json& url = image.is_object() ? require(image, "url", at + ".image_url") : image;
      const std::string field = at + (image.is_object() ? ".image_url.url" : ".image_url");
      if (!url.is_string() || url.get_ref<const std::string&>().empty()) {
        shape_error(field, "must be a non-empty URL string, got " + describe_json(url));
      }
      if (!out.image_url.empty()) {
        throw FieldError(ErrorCode::kInvalidArgument, at,
                         at + " is a second image; vlmserve answers about one image per request");
      }
      out.image_url = url.get<std::string>();
      out.image_url_field = field;
    } else {
      throw FieldError(ErrorCode::kInvalidArgument, at + ".type",
                       at + ".type " + describe_json(type) + " is not supported (text and image_url are)");
    }
  }
}

void read_messages(const Json& messages, ChatRequest& out) {
  if (!messages.is_array() || messages.empty()) {
    shape_error("messages", "must be a non-empty array of messages, got " + describe_json(messages));
  }
  std::optional<std::size_t> last_user;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const Json& message = messages[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!message.is_object()) shape_error(at, "must be a message object, got " + describe_json(message));
    const Json& role = require(message, "role", at);
    if (!role.is_string() || !kRoles.contains(role.get_ref<const std::string&>())) {
      shape_error(at + ".role", "must be one of system, developer, user, assistant, tool, got " + describe_json(role));
    }
    if (role == "user") last_user = i;
  }
  if (!last_user) {
    throw FieldError(ErrorCode::kMissingImage, "messages", "messages has no user message; send the image in one");
  }
  const std::string at = "messages[" + std::to_string(*last_user) + "].content";
  const Json& content = require(messages[*last_user], "content", at.substr(0, at.size() - 8));
  if (content.is_string()) {
    out.prompt = content.get<std::string>();
  } else if (content.is_array()) {
    read_parts(content, at, out);
  } else {
    shape_error(at, "must be a string or an array of content parts, got " + describe_json(content));
  }
  if (out.image_url.empty()) {
    throw FieldError(ErrorCode::kMissingImage, at,
                     "the last user message (" + at + ") has no image_url part; send the image as a data: URL");
  }
}

bool is_task_token(std::string_view text) {
  if (text.size() < 3 || text.front() != '<' || text.back() != '>') return false;
  return std::all_of(text.begin() + 1, text.end() - 1,
                     [](char c) { return std::isupper(static_cast<unsigned char>(c)) || c == '_'; });
}

}  // namespace

ChatRequest parse_chat_request(const Json& body) {
  if (!body.is_object()) throw Error(ErrorCode::kBadJson, "JSON body must be an object, got " + describe_json(body));
  ChatRequest out;
  bool has_messages = false;
  for (const auto& [key, value] : body.items()) {
    if (key == "messages") {
      read_messages(value, out);
      has_messages = true;
    } else if (key == "model") {
      if (!value.is_string()) {
        throw FieldError(ErrorCode::kInvalidArgument, key, "model must be a string, got " + describe_json(value));
      }
      out.model = value.get<std::string>();
    } else if (key == "stream") {
      if (!value.is_boolean() && !value.is_null())
        shape_error(key, "must be true or false, got " + describe_json(value));
      out.stream = value.is_boolean() && value.get<bool>();
    } else if (key == "stream_options") {
      if (value.is_null()) continue;
      if (!value.is_object()) shape_error(key, "must be an object, got " + describe_json(value));
      for (const auto& [option, setting] : value.items()) {
        if (option != "include_usage") {
          throw FieldError(ErrorCode::kUnknownParameter, key + "." + option,
                           "unknown field " + quote_bounded(key + "." + option) + " (known: include_usage)");
        }
        if (!setting.is_boolean())
          shape_error(key + "." + option, "must be true or false, got " + describe_json(setting));
        out.include_usage = setting.get<bool>();
      }
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      if (value.is_null()) continue;
      if (!value.is_number_integer() || value.get<std::int64_t>() < 1 ||
          value.get<std::int64_t>() > kMaxNewTokensCeiling) {
        throw FieldError(ErrorCode::kInvalidArgument, key,
                         key + " must be a whole number of tokens from 1, got " + describe_json(value));
      }
      out.max_new_tokens = static_cast<int>(value.get<std::int64_t>());
    } else if (kIgnoredFields.contains(key)) {
      continue;
    } else if (kRefusedFields.contains(key)) {
      if (!is_off(key, value)) {
        throw FieldError(ErrorCode::kInvalidArgument, key,
                         key + " " + describe_json(value) + " is not supported: " + why_refused(key));
      }
    } else {
      throw FieldError(ErrorCode::kUnknownParameter, key,
                       "unknown field " + quote_bounded(key) +
                           " for /v1/chat/completions (docs/server.md lists the "
                           "fields it reads, ignores and refuses)");
    }
  }
  if (!has_messages) shape_error("messages", "is missing");
  return out;
}

ChatTask florence2_chat_task(const std::optional<std::string>& prompt) {
  const std::string text = prompt.value_or("");
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c); })) {
    return {kChatDefaultTask, ""};
  }
  const auto close = text.find('>');
  if (close != std::string::npos && is_task_token(std::string_view(text).substr(0, close + 1))) {
    return {text.substr(0, close + 1), text.substr(close + 1)};
  }
  return {kChatFreeTextTask, text};
}

}  // namespace vlm::server
