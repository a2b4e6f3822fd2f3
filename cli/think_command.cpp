// `vlmserve think IMAGE --question "..."`: the /think pipeline on one image from the command line.
// Prints the same body POST /think answers with; the private steps never reach the terminal.
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "audit_settings.h"
#include "command.h"
#include "common.h"
#include "hub_settings.h"
#include "vlm/audit/crypto.h"
#include "vlm/error.h"
#include "vlm/hub/resolve.h"
#include "vlm/logging.h"
#include "vlm/think/service.h"

namespace vlm::cli {
namespace {

// The models loaded for this run, each called directly.
class LoadedModels final : public think::ModelSource {
 public:
  void add(std::string name, std::unique_ptr<Model> model) {
    steps_.push_back(std::make_unique<think::DirectStepModel>(*model));
    loaded_.push_back({std::move(name), std::move(model)});
  }
  std::vector<think::NamedStepModel> all() override {
    std::vector<think::NamedStepModel> out;
    for (std::size_t i = 0; i < loaded_.size(); ++i) out.push_back({loaded_[i].first, steps_[i].get()});
    return out;
  }
  think::NamedStepModel named(const std::string& name) override {
    for (std::size_t i = 0; i < loaded_.size(); ++i) {
      if (loaded_[i].first == name) return {name, steps_[i].get()};
    }
    throw Error(ErrorCode::kModelNotFound, "no model named '" + name + "' was loaded");
  }

 private:
  std::vector<std::pair<std::string, std::unique_ptr<Model>>> loaded_;
  std::vector<std::unique_ptr<think::DirectStepModel>> steps_;
};

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

  LoadedModels models;
  for (const std::string& text : options.models) {
    const ModelSpec spec = parse_model_spec(text);
    models.add(spec.name, load_model(hub::resolve_model_path(spec.path, hub_options(settings)), load_options));
  }

  const std::string bytes = read_bytes(state.image);
  think::ThinkRequest request;
  request.request_id = "cli-" + audit::to_hex(audit::random_bytes(8));
  request.client = "cli";
  request.question = question;
  request.image = std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  const think::Service service(policy, audit_log ? &*audit_log : nullptr, image_options);
  const nlohmann::json body = service.answer(request, models);
  if (audit_log) audit_log->close();
  std::cout << body.dump(2) << '\n';
  return kExitOk;
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
