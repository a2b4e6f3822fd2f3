#include "chat_response.h"

#include <utility>

#include "vlm/model_json.h"

namespace vlm::server {
namespace {

using Json = nlohmann::json;

// Text the client may have sent (a phrase) can come back in the answer; it need not be UTF-8.
std::string dump(const Json& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json usage_json(const TokenUsage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

Json chunk(const ChatAnswer& answer, Json choices) {
  return {{"id", answer.id},       {"object", "chat.completion.chunk"}, {"created", answer.created},
          {"model", answer.model}, {"system_fingerprint", nullptr},     {"choices", std::move(choices)}};
}

Json choice_delta(Json delta, const Json& finish_reason) {
  return Json::array(
      {{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}});
}

std::string event(const Json& data) { return "data: " + dump(data) + "\n\n"; }

}  // namespace

std::string chat_content(const ImageResult& result) {
  if (result.answer) {
    if (result.answer->shape == AnswerShape::kText) return result.answer->text;
    return dump(task_answer_json(*result.answer, result.detections));
  }
  Json record = to_json(result);
  return dump(Json{{"width", record["width"]}, {"height", record["height"]}, {"detections", record["detections"]}});
}

ChatAnswer chat_answer(const ImageResult& result, std::string model, std::string request_id, std::int64_t created) {
  ChatAnswer answer;
  answer.id = "chatcmpl-" + std::move(request_id);
  answer.created = created;
  answer.model = std::move(model);
  answer.content = chat_content(result);
  answer.finish_reason = result.usage.hit_max_length ? "length" : "stop";
  answer.usage = result.usage;
  return answer;
}

Json chat_completion_json(const ChatAnswer& answer) {
  Json message = {{"role", "assistant"}, {"content", answer.content}, {"refusal", nullptr}};
  return {{"id", answer.id},
          {"object", "chat.completion"},
          {"created", answer.created},
          {"model", answer.model},
          {"system_fingerprint", nullptr},
          {"choices", Json::array({{{"index", 0},
                                    {"message", std::move(message)},
                                    {"logprobs", nullptr},
                                    {"finish_reason", answer.finish_reason}}})},
          {"usage", usage_json(answer.usage)}};
}

std::string chat_completion_events(const ChatAnswer& answer, bool include_usage) {
  std::string out;
  out += event(chunk(answer, choice_delta({{"role", "assistant"}, {"content", ""}}, nullptr)));
  out += event(chunk(answer, choice_delta({{"content", answer.content}}, nullptr)));
  out += event(chunk(answer, choice_delta(Json::object(), answer.finish_reason)));
  if (include_usage) {
    Json last = chunk(answer, Json::array());
    last["usage"] = usage_json(answer.usage);
    out += event(last);
  }
  out += "data: [DONE]\n\n";
  return out;
}

}  // namespace vlm::server
