#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vlm/audit/audit_log.h"
#include "vlm/image.h"
#include "vlm/model.h"

namespace vlm::server {

struct ModelSpec {
  std::string name;
  std::string path;  // a local path, or a spec `resolve_model_path` turns into one (hf://...)
};

// Everything `vlmserve serve` decides, after flags, config file and VLM_* variables are merged. The
// option table (cli/option_table.cpp) binds the plain fields and checks their ranges; the defaults
// here are the flags' defaults.
struct ServerConfig {
  std::vector<ModelSpec> models;
  // Called in the loading phase, after the server listens, so /health answers "loading" while a
  // model downloads (a Kubernetes liveness probe must not kill a pod that is fetching weights).
  // Empty: paths are used as given.
  std::function<std::string(const std::string& spec)> resolve_model_path;
  std::string default_model;  // empty: the first model
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;  // empty: no auth
  std::string ssl_cert_file;
  std::string ssl_key_file;
  std::vector<std::string> cors_origins;  // "*" allows any origin
  ModelOptions model_options;
  DetectOptions default_options;  // what a request gets for parameters it does not send
  double max_body_mb = 20.0;
  double max_pixels = static_cast<double>(ImageLoadOptions{}.max_pixels);
  double max_request_pixels = 0;  // all images of one request together; the CLI turns 0 into max_pixels
  double timeout_s = 60.0;
  int queue = 16;
  int max_concurrent_requests = 32;  // inference requests admitted at once; more get 503 overloaded
  int batch_max = 8;
  double batch_wait_ms = 5.0;
  int max_images = 32;  // images in one request
  double read_timeout_s = 10.0;
  double header_timeout_s = 10.0;  // whole request line + headers; slowloris bound
  double write_timeout_s = 10.0;
  int http_threads = 8;
  int http_max_threads = 64;  // minus max_concurrent_requests: the workers inference can never take
  int max_pending_connections = 256;
  int max_connections_per_peer = 32;  // 0: no cap
  double drain_timeout_s = 30.0;
  int warmup_runs = 1;
  // auto: nvJPEG on the device for models that accept device images, where it starts; cpu: OpenCV.
  std::string image_decoder = "auto";  // nvJPEG where the model takes device images; cpu: OpenCV always
  // Image URLs in POST /v1/chat/completions: data: URLs always; http(s) only from these hosts
  // (exact names, or "*.example.com" for its subdomains). Empty: no fetching.
  std::vector<std::string> image_url_hosts;
  double image_url_max_mb = 10.0;     // largest image fetched
  double image_url_timeout_s = 10.0;  // whole fetch, connect to last byte
  // For tests only: fetch from loopback, private and link-local addresses too.
  bool image_url_allow_private = false;
  std::optional<audit::AuditOptions> audit;  // --audit-dir and friends; /think needs it
  std::string think_policy;                  // empty: the built-in copy of configs/think-policy.json
};

// The checks that involve several fields (the option table checks each field's own range). Throws
// vlm::Error kInvalidArgument naming the first bad field.
void validate(const ServerConfig& config);

}  // namespace vlm::server
