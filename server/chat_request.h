#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vlm::server {

// A POST /v1/chat/completions body, read into what vlmserve runs: the image and the text of the last
// user message, the model, and how to answer. Fields OpenAI defines that cannot change what
// vlmserve answers (temperature, top_p, seed, user, ...) are accepted and ignored; fields that
// would (n > 1, tools, logprobs, stop, ...) are refused when set, naming the field; any
// other field is refused as unknown. docs/server.md lists each.
struct ChatRequest {
  std::string model;  // empty: the default model
  std::string image_url;
  std::string image_url_field;        // where it was, for errors: "messages[0].content[1].image_url.url"
  std::optional<std::string> prompt;  // the text part, as sent; absent when there is none
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk carries `usage`
  // max_completion_tokens (or the older max_tokens): Florence-2's max_new_tokens; YOLO writes no tokens.
  std::optional<int> max_new_tokens;
};

// Throws FieldError (errors.h) naming the field: bad_json for a wrong shape, invalid_argument for a
// value vlmserve does not support, unknown_parameter for a field OpenAI does not define,
// missing_image when the last user message has no image.
ChatRequest parse_chat_request(const nlohmann::json& body);

// A Florence-2 task and its text, from the prompt of a chat request.
struct ChatTask {
  std::string task;
  std::string text;
};

// The task a Florence-2 model runs for `prompt`:
//   no text, or only whitespace          -> <MORE_DETAILED_CAPTION>
//   "<TASK_TOKEN>rest"                   -> that task, with `rest` as its text (exactly as transformers'
//                                           processor reads task + text)
//   any other text                       -> <CAPTION_TO_PHRASE_GROUNDING>, with the text as the phrase
// An unknown token is passed on as the task, for the model to refuse naming the tasks it knows.
ChatTask florence2_chat_task(const std::optional<std::string>& prompt);

inline constexpr const char* kChatDefaultTask = "<MORE_DETAILED_CAPTION>";
inline constexpr const char* kChatFreeTextTask = "<CAPTION_TO_PHRASE_GROUNDING>";

}  // namespace vlm::server
