#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vlm/audit/audit_log.h"
#include "vlm/error.h"
#include "vlm/image.h"
#include "vlm/think/pipeline.h"
#include "vlm/think/policy.h"

// /think end to end, the same for POST /think and `vlmserve think`: the edges parse their input
// and lend their models; the service does everything else, so the two cannot drift apart.
namespace vlm::think {

struct NamedStepModel {
  std::string name;
  StepModel* model = nullptr;
};

// How an edge lends its models to one request: the server through its batchers (sharing their
// queue and deadline), the CLI directly.
class ModelSource {
 public:
  virtual ~ModelSource() = default;
  // Every model that can take a step now, in the edge's order.
  virtual std::vector<NamedStepModel> all() = 0;
  // The model with this name; throws kModelNotFound when the edge has none.
  virtual NamedStepModel named(const std::string& name) = 0;
};

struct ThinkRequest {
  std::string request_id;
  std::string client;                   // audit identity (an API key's id, "cli"), never a secret
  std::span<const std::uint8_t> image;  // the encoded image as received
  std::string question;
  std::vector<std::string> models;  // names asked for; empty: every model the source has
};

class Service {
 public:
  // `audit_log` may be null (the CLI without --audit-dir); with one, every outcome is recorded and
  // no answer is released without its record.
  Service(const Policy& policy, audit::AuditLog* audit_log, ImageLoadOptions image_options);

  // Chooses the models (the first Florence-2 and the first YOLO among those asked for), decodes
  // the image, runs the four steps, audits the outcome and returns the body: the released final
  // answer plus outcome, timings, models, request_id and (when audited) audit_id. Throws
  // vlm::Error after recording the failure; kAuditUnavailable when the record cannot be written.
  nlohmann::json answer(const ThinkRequest& request, ModelSource& models) const;

  // Records a request the edge refused before it could be read (bad body, missing question), so
  // the log holds one record for every /think. Never throws: the caller's error goes out anyway.
  void record_refused(const std::string& request_id, const std::string& client, ErrorCode code) const;

 private:
  const Policy& policy_;
  audit::AuditLog* audit_log_;
  ImageLoadOptions image_options_;
};

// Comma-separated model names ("florence,yolo"), blanks dropped.
std::vector<std::string> split_model_names(const std::string& text);

}  // namespace vlm::think
