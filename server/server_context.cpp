#include "server_context.h"

#include <algorithm>
#include <thread>

#include <opencv2/core.hpp>

#include "vlm/audit/crypto.h"
#include "vlm/logging.h"
#include "vlm/think/pipeline.h"

namespace vlm::server {
namespace {

double elapsed_s(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string_view server_state_name(ServerState state) {
  switch (state) {
    case ServerState::kLoading: return "loading";
    case ServerState::kReady: return "ready";
    case ServerState::kDraining: return "draining";
    case ServerState::kFailed: return "failed";
  }
  return "failed";
}

ErrorCode state_error_code(ServerState state) {
  switch (state) {
    case ServerState::kLoading: return ErrorCode::kLoading;
    case ServerState::kDraining: return ErrorCode::kDraining;
    case ServerState::kReady:  // a ready server refuses nothing for its state; reaching here is a bug
    case ServerState::kFailed: return ErrorCode::kServerFailed;
  }
  return ErrorCode::kServerFailed;
}

ServerContext::ServerContext(ServerConfig config)
    : config_(std::move(config)), started_unix_s_(unix_now_s()), admission_(config_.max_concurrent_requests) {
  validate(config_);
  default_model_ = config_.default_model.empty() ? config_.models.front().name : config_.default_model;
  if (config_.audit) {
    if (!think::protect_process_memory())
      log::warn("could not disable core dumps: a crash could write /think transcripts to disk");
    think_policy_ = config_.think_policy.empty() ? think::Policy::builtin() : think::Policy::load(config_.think_policy);
    audit_log_ = std::make_unique<audit::AuditLog>(*config_.audit);
    // Keyed, so the id in the log cannot be used to test guesses of the API key.
    client_id_ = config_.api_key.empty() ? "anonymous"
                                         : "key-" + audit_log_->text_hmac("api_key_id", config_.api_key).substr(0, 16);
    const auto& recovery = audit_log_->recovery();
    if (recovery.dropped_bytes > 0) {
      log::warn("audit log: dropped a torn last line of {} bytes (sha256 {}) left by a crash; chain resumed at seq {}",
                recovery.dropped_bytes, recovery.dropped_sha256, recovery.resumed_seq);
    }
    log::info("audit log in {} ({}), checkpoints signed by {}", config_.audit->directory.string(),
              recovery.new_log ? "new chain" : "resumed from " + recovery.resumed_file,
              audit::to_hex(audit_log_->public_key()));
  }
}

ServerContext::~ServerContext() {
  for (auto& [name, served] : models_) {
    if (served->batcher) served->batcher->stop();
  }
}

void ServerContext::load_models() {
  try {
    // Built aside and published before the state turns ready: handlers read models_ only then.
    std::map<std::string, std::unique_ptr<ServedModel>> loaded;
    for (const auto& spec : config_.models) {
      const auto start = std::chrono::steady_clock::now();
      const std::string path = config_.resolve_model_path ? config_.resolve_model_path(spec.path) : spec.path;
      log::info("loading model '{}' from {}", spec.name, path);
      auto served = std::make_unique<ServedModel>();
      served->name = spec.name;
      served->model = load_model(path, config_.model_options);
      // The server's own --classes, --task, ... fail here, naming what the model takes, rather than
      // in every request.
      served->model->check_options(config_.default_options);
      // Warm-up runs pay for lazy initialisation (allocator growth, per-shape kernel setup) before
      // /ready says yes: the whole path once, and a forward pass at each batch size the batcher
      // forms, so neither the first request nor the first batch of a new size stalls.
      const int side = std::max(32, served->model->info().image_size);
      std::vector<Image> warm(1);
      warm[0].rgb = cv::Mat(side, side, CV_8UC3, cv::Scalar(114, 114, 114));
      for (int i = 0; i < config_.warmup_runs; ++i) {
        served->model->run(warm, DetectOptions{});
        served->model->warm_up(config_.batch_max);
      }
      BatcherOptions batching;
      batching.batch_max = config_.batch_max;
      batching.batch_wait_ms = config_.batch_wait_ms;
      batching.queue_capacity = config_.queue;
      served->batcher = std::make_unique<Batcher>(spec.name, *served->model, batching, metrics_);
      served->stages = &metrics_.stage_histograms(spec.name);
      served->image_decoder = std::make_unique<RequestImageDecoder>(config_.image_decoder, *served->model);
      const double seconds = elapsed_s(start);
      served->loaded_unix_s = unix_now_s();
      metrics_.set_model_load_seconds(spec.name, seconds);
      log::info("model '{}' ready: {} on {} ({:.0f} ms with warm-up); images decoded by {} ({})", spec.name,
                served->model->info().family, served->model->info().device, seconds * 1e3,
                image_decoder_name(served->image_decoder->kind()), served->image_decoder->reason());
      loaded.emplace(spec.name, std::move(served));
    }
    models_ = std::move(loaded);
    ServerState expected = ServerState::kLoading;
    state_.compare_exchange_strong(expected, ServerState::kReady);
  } catch (const std::exception& e) {
    log::error("loading models failed: {}", e.what());
    state_ = ServerState::kFailed;
    throw;
  }
}

bool ServerContext::drain(std::chrono::steady_clock::duration timeout) {
  state_ = ServerState::kDraining;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Admission covers a request from its headers to its written response: a body still uploading,
  // its handler and its wait in a batcher included.
  while (admission_.admitted() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      log::warn("drain timed out with {} requests still running", admission_.admitted());
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void ServerContext::close_audit_log() {
  if (!audit_log_) return;
  try {
    audit_log_->close();
  } catch (const Error& e) {
    log::error("audit log: closing failed: {}", e.what());
  }
}

ServedModel& ServerContext::model_for(const std::string& name) {
  const std::string& wanted = name.empty() ? default_model_ : name;
  auto it = models_.find(wanted);
  if (it == models_.end()) {
    std::string known;
    for (const auto& spec : config_.models) known += (known.empty() ? "" : ", ") + spec.name;
    throw Error(ErrorCode::kModelNotFound,
                "no model named '" + log::sanitize(wanted.substr(0, 64)) + "' (loaded: " + known + ")");
  }
  return *it->second;
}

std::chrono::steady_clock::time_point ServerContext::deadline(std::chrono::steady_clock::time_point start) const {
  return start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                     std::chrono::duration<double>(config_.timeout_s));
}

}  // namespace vlm::server
