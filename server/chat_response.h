#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "vlm/model.h"

namespace vlm::server {

// One chat answer, before it is shaped as a chat.completion or as chat.completion.chunk events.
struct ChatAnswer {
  std::string id;  // "chatcmpl-<request id>"
  std::int64_t created = 0;
  std::string model;
  std::string content;
  std::string finish_reason;  // "stop", or "length" when generation stopped at its length limit
  TokenUsage usage;
};

// The message content for one image's result: a Florence-2 text task's answer as it is (caption,
// OCR), any other task's post-processed answer as JSON text (POST /detect's `result`), and for YOLO
// {"width", "height", "detections"} as JSON text (POST /detect's record without timings).
std::string chat_content(const ImageResult& result);

ChatAnswer chat_answer(const ImageResult& result, std::string model, std::string request_id, std::int64_t created);

// {"id", "object": "chat.completion", "created", "model", "choices": [...], "usage"}
nlohmann::json chat_completion_json(const ChatAnswer& answer);

// Server-sent events: a chunk with the role, one with the whole content, one with finish_reason,
// one with `usage` when `include_usage`, then "data: [DONE]". The answer exists only once generation
// ends, so every event is written then, together.
std::string chat_completion_events(const ChatAnswer& answer, bool include_usage);

}  // namespace vlm::server
