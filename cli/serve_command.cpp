// `vlmserve serve`: the HTTP server (server/); this file only turns settings into a ServerConfig.
#include <fstream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>

#include "audit_settings.h"
#include "command.h"
#include "common.h"
#include "hub_settings.h"
#include "serve.h"
#include "vlm/error.h"
#include "vlm/hub/repo_spec.h"
#include "vlm/hub/resolve.h"

namespace vlm::cli {
namespace {

struct ServeState {
  Settings settings{"serve"};
};

std::string read_api_key(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot read --api-key-file " + path);
  std::stringstream text;
  text << in.rdbuf();
  std::string key = text.str();
  const auto first = key.find_first_not_of(" \t\r\n");
  const auto last = key.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) throw Error(ErrorCode::kInvalidArgument, "--api-key-file " + path + " is empty");
  return key.substr(first, last - first + 1);
}

int to_int(const Settings& settings, const char* name) { return static_cast<int>(settings.get_int(name)); }

server::ServerConfig server_config(const Settings& settings) {
  server::ServerConfig config;
  for (const std::string& text : settings.get_list("model")) {
    ModelSpec spec = parse_model_spec(text);
    // A malformed hf:// spec is a usage error now, not a failed load after the server started.
    if (hub::is_hub_spec(spec.path)) hub::parse_repo_spec(spec.path);
    config.models.push_back({spec.name, spec.path});
  }
  // hf:// models are fetched (or found in the cache) in the loading phase, while /health says loading.
  config.resolve_model_path = [hub = hub_options(settings)](const std::string& spec) {
    return hub::resolve_model_path(spec, hub).string();
  };
  config.default_model = settings.get("default-model");
  config.host = settings.get("host");
  config.port = to_int(settings, "port");
  if (settings.is_set("api-key") && settings.is_set("api-key-file")) {
    throw Error(ErrorCode::kInvalidArgument, "give --api-key or --api-key-file, not both");
  }
  config.api_key =
      settings.is_set("api-key-file") ? read_api_key(settings.get("api-key-file")) : settings.get("api-key");
  config.ssl_cert_file = settings.get("ssl-cert-file");
  config.ssl_key_file = settings.get("ssl-key-file");
  config.cors_origins = settings.get_list("cors-origins");
  config.model_options = model_options(settings);
  config.default_options = detect_options(settings);
  config.max_pixels = static_cast<double>(image_load_options(settings).max_pixels);
  config.max_request_pixels = settings.get_float("max-request-pixels");
  if (config.max_request_pixels == 0) config.max_request_pixels = config.max_pixels;
  config.max_body_mb = settings.get_float("max-body-mb");
  config.timeout_s = settings.get_float("timeout-s");
  config.queue = to_int(settings, "queue");
  config.max_concurrent_requests = to_int(settings, "max-concurrent-requests");
  config.batch_max = to_int(settings, "batch-max");
  config.batch_wait_ms = settings.get_float("batch-wait-ms");
  config.max_images = to_int(settings, "max-images");
  config.read_timeout_s = settings.get_float("read-timeout-s");
  config.header_timeout_s = settings.get_float("header-timeout-s");
  config.write_timeout_s = settings.get_float("write-timeout-s");
  config.audit = audit_options(settings);
  config.think_policy = settings.get("think-policy");
  config.http_threads = to_int(settings, "http-threads");
  config.http_max_threads = to_int(settings, "http-max-threads");
  config.max_pending_connections = to_int(settings, "max-pending-connections");
  config.max_connections_per_peer = to_int(settings, "max-connections-per-peer");
  config.drain_timeout_s = settings.get_float("drain-timeout-s");
  config.warmup_runs = to_int(settings, "warmup");
  return config;
}

int run_serve(ServeState& state) {
  try {
    state.settings.resolve();
    apply_process_settings(state.settings);
    return server::serve(server_config(state.settings));
  } catch (const std::exception& e) {
    return report_fatal(e);
  }
}

}  // namespace

Subcommand add_serve_command(CLI::App& root) {
  auto state = std::make_shared<ServeState>();
  CLI::App* app =
      root.add_subcommand("serve", "Serve models over HTTP: POST /detect, /health, /ready, /v1/models, /metrics");
  state->settings.register_flags(*app);
  app->footer(
      "Example: vlmserve serve --model yolo=yolov5n.torchscript --port 8080, then\n"
      "  curl -F image=@bus.jpg localhost:8080/detect\n"
      "Every option can also come from --config FILE (JSON, keys with underscores; see configs/server.json) and "
      "from VLM_* environment variables; the command line wins, then the environment, then the file. The API is "
      "described at GET /openapi.json. SIGINT/SIGTERM drain in-flight requests, then exit 0.");
  return {app, [state] { return run_serve(*state); }};
}

}  // namespace vlm::cli
