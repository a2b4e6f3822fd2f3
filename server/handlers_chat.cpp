// POST /v1/chat/completions: OpenAI's chat API over the served models. The last user message's image
// and text become one image and one DetectOptions, which go through the model's batcher exactly as a
// POST /detect of that image would; the answer comes back as a chat.completion or as server-sent
// chat.completion.chunk events.
#include <chrono>
#include <optional>
#include <span>

#include "app.h"
#include "chat_request.h"
#include "chat_response.h"
#include "image_input.h"
#include "image_url.h"
#include "json_body.h"
#include "request_image_decoder.h"
#include "request_stages.h"
#include "vlm/image.h"

namespace vlm::server {
namespace {

std::int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The options a chat request runs with: the server's defaults, and for Florence-2 the task its
// prompt maps to (chat_request.h). YOLO reads no text: it answers with its detections whatever the
// prompt says.
DetectOptions chat_options(const ChatRequest& chat, const Model& model, const DetectOptions& defaults) {
  DetectOptions options = defaults;
  if (model.info().family == "florence2") {
    const ChatTask task = florence2_chat_task(chat.prompt);
    options.task = task.task;
    options.text = task.text;
    // The server's --max-new-tokens-limit still bounds it (check_options names the limit).
    if (chat.max_new_tokens) options.max_new_tokens = chat.max_new_tokens;
  }
  return options;
}

}  // namespace

void App::handle_chat_completions(const HttpRequest& request, HttpResponse& response) {
  const auto deadline = context_.deadline(request.start);
  const std::string type = media_type(request.header("Content-Type"));
  if (type != "application/json") {
    throw Error(ErrorCode::kUnsupportedMediaType,
                "Content-Type '" + (type.empty() ? std::string("(none)") : type) +
                    "' is not accepted on /v1/chat/completions; send application/json");
  }
  const ChatRequest chat = parse_chat_request(parse_json_body(request.body));
  ServedModel* served = nullptr;
  try {
    served = &context_.model_for(chat.model);
  } catch (const Error& error) {
    throw FieldError(error.code(), "model", error.what());
  }
  const DetectOptions options = chat_options(chat, *served->model, config_.default_options);
  try {
    served->model->check_options(options);
  } catch (const Error& error) {
    throw FieldError(error.code(), "messages", error.what());
  }
  const std::string bytes = load_image_url(chat.image_url, chat.image_url_field, image_url_policy_);

  const auto decode_start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point decode_end;
  std::optional<Ticket> ticket;
  {
    // Announced before decoding so the batcher waits for this request rather than run without it.
    Batcher::Incoming incoming(*served->batcher);
    ImageLoadOptions load;
    load.max_pixels = static_cast<std::uint64_t>(config_.max_pixels);
    std::vector<Image> images;
    DecodedImage decoded = std::move(served->image_decoder->decode(std::span(&bytes, 1), load).front());
    if (decoded.error) {
      throw FieldError(decoded.error->code(), chat.image_url_field,
                       chat.image_url_field + ": " + decoded.error->what());
    }
    images.push_back(std::move(*decoded.image));
    decode_end = std::chrono::steady_clock::now();
    ticket.emplace(served->batcher->submit(std::move(images), options, deadline));
  }
  const std::vector<ImageResult> results = ticket->await(deadline, request.is_connection_closed);
  const auto done = std::chrono::steady_clock::now();
  record_stages(*served->stages, {request.start, decode_start, decode_end}, ticket->run());
  const ChatAnswer answer = chat_answer(results.front(), served->name, request.request_id, unix_now_s());
  if (chat.stream) {
    response.content_type = "text/event-stream";
    response.headers.emplace_back("Cache-Control", "no-cache");
    response.body = chat_completion_events(answer, chat.include_usage);
  } else {
    response.body = chat_completion_json(answer).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  response.on_written = respond_recorder(*served->stages, done);
}

}  // namespace vlm::server
