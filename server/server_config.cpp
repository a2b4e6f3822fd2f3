#include "server_config.h"

#include <set>

#include "vlm/error.h"

namespace vlm::server {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw Error(ErrorCode::kInvalidArgument, message);
}

std::string number(double value) {
  std::string text = std::to_string(value);
  while (text.size() > 1 && text.back() == '0') text.pop_back();
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

}  // namespace

void validate(const ServerConfig& config) {
  require(!config.models.empty(), "no model to serve: pass --model NAME=PATH (or set \"model\" in the config file)");
  std::set<std::string> names;
  for (const auto& spec : config.models) {
    require(!spec.name.empty() && !spec.path.empty(),
            "--model must be NAME=PATH, got '" + spec.name + "=" + spec.path + "'");
    require(names.insert(spec.name).second, "--model name '" + spec.name + "' is given twice");
  }
  require(config.default_model.empty() || names.contains(config.default_model),
          "--default-model '" + config.default_model + "' is not one of the --model names");
  require(config.ssl_cert_file.empty() == config.ssl_key_file.empty(),
          "--ssl-cert-file and --ssl-key-file must be given together");
  require(config.max_request_pixels >= config.max_pixels && config.max_request_pixels <= 1e12,
          "--max-request-pixels must be in [--max-pixels, 1e12] so that one image of the largest size fits, got " +
              number(config.max_request_pixels));
  require(config.image_decoder == "auto" || config.image_decoder == "cpu",
          "--image-decoder must be auto or cpu, got '" + config.image_decoder.substr(0, 64) + "'");
  require(config.http_max_threads >= config.http_threads, "--http-max-threads must be >= --http-threads");
  // The workers inference can never take answer /health, /ready, /metrics and the 503 refusals.
  require(config.max_concurrent_requests >= 1 && config.max_concurrent_requests < config.http_max_threads,
          "--max-concurrent-requests must be in [1, --http-max-threads) so probes keep workers of their own, got " +
              std::to_string(config.max_concurrent_requests) + " with --http-max-threads " +
              std::to_string(config.http_max_threads));
}

}  // namespace vlm::server
