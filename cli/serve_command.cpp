// `vlmserve serve`: the HTTP server (server/); this file only completes the ServerConfig the options fill.
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

// The table fills the serve-only fields of ServerConfig directly; what is left here is derived.
server::ServerConfig server_config(const Settings& settings) {
  const Options& options = settings.options();
  server::ServerConfig config = options.server;
  for (const std::string& text : options.models) {
    ModelSpec spec = parse_model_spec(text);
    // A malformed hf:// spec is a usage error now, not a failed load after the server started.
    if (hub::is_hub_spec(spec.path)) hub::parse_repo_spec(spec.path);
    config.models.push_back({spec.name, spec.path});
  }
  // hf:// models are fetched (or found in the cache) in the loading phase, while /health says loading.
  config.resolve_model_path = [hub = hub_options(settings)](const std::string& spec) {
    return hub::resolve_model_path(spec, hub).string();
  };
  if (settings.is_set("api-key") && settings.is_set("api-key-file")) {
    throw Error(ErrorCode::kInvalidArgument, "give --api-key or --api-key-file, not both");
  }
  if (settings.is_set("api-key-file")) config.api_key = read_api_key(options.api_key_file);
  config.model_options = model_options(settings);
  config.default_options = detect_options(settings);
  config.max_pixels = options.max_pixels;
  if (config.max_request_pixels == 0) config.max_request_pixels = config.max_pixels;
  config.audit = audit_options(settings);
  config.think_policy = options.think_policy;
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
