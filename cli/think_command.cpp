// `vlmserve think IMAGE --question "..."`: the /think pipeline on one image from the command line.
// Prints the same body POST /think answers with; the private steps never reach the terminal.
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include <CLI/CLI.hpp>

#include "audit_settings.h"
#include "command.h"
#include "common.h"
#include "hub_settings.h"
#include "vlm/audit/crypto.h"
#include "vlm/error.h"
#include "vlm/hub/resolve.h"
#include "vlm/logging.h"
#include "vlm/think/pipeline.h"

namespace vlm::cli {
namespace {

struct ThinkState {
  Settings settings{"think"};
  std::string image;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot read image " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int run_think_command(ThinkState& state) {
  Settings& settings = state.settings;
  settings.resolve();
  apply_process_settings(settings);
  if (!think::protect_process_memory())
    log::warn("could not disable core dumps: a crash could write the transcript to disk");
  const Options& options = settings.options();
  const std::string& question = options.question;
  if (question.empty()) throw Error(ErrorCode::kInvalidArgument, "think needs --question");
  const auto policy =
      options.think_policy.empty() ? think::Policy::builtin() : think::Policy::load(options.think_policy);
  const ModelOptions load_options = model_options(settings);
  const ImageLoadOptions image_options = image_load_options(settings);
  if (options.models.empty()) throw Error(ErrorCode::kInvalidArgument, "think needs --model (YOLO and/or Florence-2)");

  std::optional<audit::AuditLog> audit_log;
  if (auto audit = audit_options(settings)) {
    audit_log.emplace(*audit);
    if (audit_log->recovery().dropped_bytes > 0) {
      log::warn("audit log: dropped a torn last line of {} bytes (sha256 {}) left by a crash",
                audit_log->recovery().dropped_bytes, audit_log->recovery().dropped_sha256);
    }
  }

  std::vector<std::unique_ptr<Model>> loaded;
  std::vector<std::unique_ptr<think::DirectStepModel>> steps;
  think::ThinkModels models;
  for (const std::string& text : options.models) {
    const ModelSpec spec = parse_model_spec(text);
    loaded.push_back(load_model(hub::resolve_model_path(spec.path, hub_options(settings)), load_options));
    steps.push_back(std::make_unique<think::DirectStepModel>(*loaded.back()));
    const std::string& family = loaded.back()->info().family;
    if (family == "florence2" && models.florence == nullptr) {
      models.florence = steps.back().get();
      models.florence_name = spec.name;
    } else if (family == "yolo" && models.detector == nullptr) {
      models.detector = steps.back().get();
      models.detector_name = spec.name;
    }
  }

  const std::string bytes = read_bytes(state.image);
  const std::string image_sha256 = audit::to_hex(audit::sha256(bytes));
  const std::string request_id = "cli-" + audit::to_hex(audit::random_bytes(8));
  think::PrivateRecord record;
  try {
    const Image image =
        decode_image(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), image_options);
    think::ThinkResult result = think::run_think(image, question, models, policy, think::ThinkSettings{}, record);
    nlohmann::json body = result.final_answer;
    body["outcome"] = result.outcome;
    body["timings"] = result.timings;
    body["request_id"] = request_id;
    nlohmann::json names = nlohmann::json::array();
    for (const auto& model : result.models) names.push_back(model.name);
    body["models"] = names;
    if (audit_log) {
      body["audit_id"] = audit_log
                             ->append(think::think_audit_entry(request_id, "cli", image_sha256, question, &result,
                                                               &record, result.outcome))
                             .record_hash;
      audit_log->close();
    }
    std::cout << body.dump(2) << '\n';
    return kExitOk;
  } catch (const Error& error) {
    if (audit_log) {
      audit_log->append(think::think_audit_entry(request_id, "cli", image_sha256, question, nullptr, nullptr,
                                                 "error:" + std::string(error_code_name(error.code()))));
      audit_log->close();
    }
    throw;
  }
}

}  // namespace

Subcommand add_think_command(CLI::App& root) {
  auto state = std::make_shared<ThinkState>();
  CLI::App* app = root.add_subcommand(
      "think", "Answer a question about an image in private steps; print the final answer and its evidence only");
  app->add_option("image", state->image, "Image file")->required();
  state->settings.register_flags(*app);
  return {app, [state]() {
            try {
              return run_think_command(*state);
            } catch (const std::exception& error) {
              return report_fatal(error);
            }
          }};
}

}  // namespace vlm::cli
