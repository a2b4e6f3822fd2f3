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
  require(config.port >= 0 && config.port <= 65535, "--port must be in [0, 65535], got " + std::to_string(config.port));
  require(config.ssl_cert_file.empty() == config.ssl_key_file.empty(),
          "--ssl-cert-file and --ssl-key-file must be given together");
  require(config.max_body_mb > 0 && config.max_body_mb <= 4096,
          "--max-body-mb must be in (0, 4096], got " + number(config.max_body_mb));
  require(config.max_pixels >= 1 && config.max_pixels <= 1e10,
          "--max-pixels must be in [1, 1e10], got " + number(config.max_pixels));
  require(config.max_request_pixels >= config.max_pixels && config.max_request_pixels <= 1e12,
          "--max-request-pixels must be in [--max-pixels, 1e12] so that one image of the largest size fits, got " +
              number(config.max_request_pixels));
  require(config.timeout_s > 0 && config.timeout_s <= 3600,
          "--timeout-s must be in (0, 3600], got " + number(config.timeout_s));
  require(config.queue >= 1 && config.queue <= 100000,
          "--queue must be in [1, 100000], got " + std::to_string(config.queue));
  require(config.batch_max >= 1 && config.batch_max <= 1024,
          "--batch-max must be in [1, 1024], got " + std::to_string(config.batch_max));
  require(config.batch_wait_ms >= 0 && config.batch_wait_ms <= 10000,
          "--batch-wait-ms must be in [0, 10000], got " + number(config.batch_wait_ms));
  require(config.max_images >= 1 && config.max_images <= 1024,
          "--max-images must be in [1, 1024], got " + std::to_string(config.max_images));
  require(config.header_timeout_s > 0, "--header-timeout-s must be positive");
  require(config.read_timeout_s > 0 && config.write_timeout_s > 0,
          "--read-timeout-s and --write-timeout-s must be positive");
  require(config.http_threads >= 1 && config.http_max_threads >= config.http_threads,
          "--http-threads must be >= 1 and --http-max-threads >= --http-threads");
  require(config.max_pending_connections >= 1, "--max-pending-connections must be >= 1");
  require(config.max_connections_per_peer >= 0, "--max-connections-per-peer must be >= 0 (0: no cap), got " +
                                                    std::to_string(config.max_connections_per_peer));
  // The workers inference can never take answer /health, /ready, /metrics and the 503 refusals.
  require(config.max_concurrent_requests >= 1 && config.max_concurrent_requests < config.http_max_threads,
          "--max-concurrent-requests must be in [1, --http-max-threads) so probes keep workers of their own, got " +
              std::to_string(config.max_concurrent_requests) + " with --http-max-threads " +
              std::to_string(config.http_max_threads));
  require(config.drain_timeout_s >= 0, "--drain-timeout-s must be >= 0");
}

}  // namespace vlm::server
