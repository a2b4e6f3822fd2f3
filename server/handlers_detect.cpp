// POST /detect: parse, decode, queue for the model's batcher, wait, answer.
#include <chrono>
#include <optional>
#include <span>

#include "app.h"
#include "image_input.h"
#include "pixel_budget.h"
#include "request_image_decoder.h"
#include "request_params.h"
#include "request_stages.h"
#include "vlm/image.h"
#include "vlm/model_json.h"

namespace vlm::server {
namespace {

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

ImageInputRules detect_rules(std::size_t max_images) { return {max_images, cli::detect_param_names()}; }

}  // namespace

void App::handle_detect(const HttpRequest& request, HttpResponse& response) {
  const auto deadline = context_.deadline(request.start);
  const ImageInput input = parse_image_input(request, detect_rules(static_cast<std::size_t>(config_.max_images)));
  const cli::DetectRequestParams params = cli::parse_detect_params(input.params, config_.default_options);
  ServedModel& served = context_.model_for(params.model);
  served.model->check_options(params.options);
  check_request_pixels(input.images, static_cast<std::uint64_t>(config_.max_request_pixels));

  // A batch answers each image on its own, as `vlmserve detect` does: an image that fails to
  // decode gets an error entry in its slot and the others still run.
  std::vector<nlohmann::json> failed(input.images.size());
  std::vector<std::size_t> slots;  // input index of each decoded image
  const auto decode_start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point decode_end;
  std::optional<Ticket> ticket;
  {
    // Announced before decoding so the batcher waits for this request rather than run without it.
    Batcher::Incoming incoming(*served.batcher);
    std::vector<Image> images;
    images.reserve(input.images.size());
    ImageLoadOptions load;
    load.max_pixels = static_cast<std::uint64_t>(config_.max_pixels);
    std::optional<Error> first_error;
    std::vector<DecodedImage> decoded = served.image_decoder->decode(input.images, load);
    for (std::size_t i = 0; i < decoded.size(); ++i) {
      if (decoded[i].image) {
        images.push_back(std::move(*decoded[i].image));
        slots.push_back(i);
        continue;
      }
      const Error& error = *decoded[i].error;
      const std::string where = input.images.size() > 1 ? "image " + std::to_string(i) + ": " : "";
      if (!first_error) first_error.emplace(error.code(), where + error.what());
      failed[i] = {{"error", {{"code", std::string(error_code_name(error.code()))}, {"message", error.what()}}}};
    }
    // Only when no image is left does the request fail, with the first image's status.
    if (images.empty() && first_error) throw *first_error;
    decode_end = std::chrono::steady_clock::now();
    ticket.emplace(served.batcher->submit(std::move(images), params.options, deadline));
  }
  std::vector<ImageResult> results = ticket->await(deadline, request.is_connection_closed);
  const auto done = std::chrono::steady_clock::now();

  const StageTimes stages = record_stages(*served.stages, {request.start, decode_start, decode_end}, ticket->run());
  nlohmann::json timings = {{"receive_ms", stages.receive_ms},
                            {"decode_ms", stages.decode_ms},
                            {"queue_ms", stages.queue_ms},
                            {"preprocess_ms", stages.preprocess_ms},
                            {"forward_ms", stages.forward_ms},
                            {"postprocess_ms", stages.postprocess_ms},
                            {"batch_images", ticket->run().images},
                            {"queue_and_run_ms", ms_between(decode_end, done)},
                            {"total_ms", ms_between(request.start, done)}};
  nlohmann::json body;
  if (!input.batch) {
    body = to_json(results.front());
  } else {
    for (std::size_t k = 0; k < results.size(); ++k) failed[slots[k]] = to_json(results[k]);
    body["results"] = std::move(failed);
  }
  body["model"] = served.name;
  body["request_id"] = request.request_id;
  body["request_timings"] = std::move(timings);
  response.body = body.dump();
  response.on_written = respond_recorder(*served.stages, done);
}

}  // namespace vlm::server
