// `vlmserve detect PATH...`: one JSON line per image; bad inputs are recorded and the run goes on.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>

#include <CLI/CLI.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "command.h"
#include "common.h"
#include "hub_settings.h"
#include "input_files.h"
#include "vlm/annotate.h"
#include "vlm/error.h"
#include "vlm/hub/resolve.h"
#include "vlm/logging.h"
#include "vlm/model_json.h"

namespace vlm::cli {
namespace {

struct DetectState {
  Settings settings{"detect"};
  std::vector<std::string> paths;
};

// Picks a file name in `dir` not yet used in this run, so same-named inputs from different
// folders do not overwrite each other.
std::filesystem::path unique_output(const std::filesystem::path& dir, const std::filesystem::path& input,
                                    std::set<std::string>& used) {
  std::string stem = input.stem().string();
  std::string ext = input.extension().string();
  if (ext == ".gif" || ext.empty()) ext = ".jpg";
  std::string name = stem + ext;
  for (int n = 1; used.contains(name); ++n) name = stem + "_" + std::to_string(n) + ext;
  used.insert(name);
  return dir / name;
}

nlohmann::json error_record(const std::filesystem::path& path, std::string_view code, const std::string& message) {
  return {{"path", path.string()}, {"error", {{"code", code}, {"message", message}}}};
}

class DetectRun {
 public:
  DetectRun(const Settings& settings, std::ostream& out)
      : settings_(settings), out_(out), progress_(isatty(STDERR_FILENO) == 1) {}

  int run(const std::vector<InputFile>& inputs) {
    ModelSpec spec = parse_model_spec(settings_.options().models.back());
    ModelOptions load_options = model_options(settings_);
    DetectOptions options = detect_options(settings_);
    ImageLoadOptions image_options = image_load_options(settings_);
    const int batch = settings_.options().detect_run.batch;
    annotate_dir_ = settings_.options().detect_run.save_annotated;
    if (!annotate_dir_.empty()) std::filesystem::create_directories(annotate_dir_);
    model_name_ = spec.name;
    std::unique_ptr<Model> model = load_model(hub::resolve_model_path(spec.path, hub_options(settings_)), load_options);
    // A request the model cannot take is bad usage (exit 2), not a failure of every image.
    model->check_options(options);
    // Loading warmed batches of one; a first full batch of another size would otherwise pay that
    // shape's one-time costs and report inflated timings.
    const auto first_batch = static_cast<int>(std::min(inputs.size(), static_cast<std::size_t>(batch)));
    if (first_batch > 1) model->warm_up(first_batch);

    for (std::size_t start = 0; start < inputs.size(); start += static_cast<std::size_t>(batch)) {
      std::size_t end = std::min(inputs.size(), start + static_cast<std::size_t>(batch));
      run_batch(*model, options, image_options, std::span(inputs).subspan(start, end - start));
      if (progress_) std::cerr << "\r[" << end << "/" << inputs.size() << "] " << std::flush;
    }
    if (progress_) std::cerr << '\n';
    log::info("{} images, {} failed", inputs.size(), failures_);
    return failures_ == 0 ? kExitOk : kExitSomeInputsFailed;
  }

 private:
  void run_batch(Model& model, const DetectOptions& options, const ImageLoadOptions& image_options,
                 std::span<const InputFile> inputs) {
    std::vector<nlohmann::json> records(inputs.size());
    std::vector<Image> images;
    std::vector<std::size_t> slots;  // records index of each decoded image
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const InputFile& input = inputs[i];
      if (!input.error_code.empty()) {
        records[i] = error_record(input.path, input.error_code, input.error_message);
        continue;
      }
      try {
        images.push_back(load_image(input.path, image_options));
        slots.push_back(i);
      } catch (const Error& e) {
        records[i] = error_record(input.path, error_code_name(e.code()), e.what());
      }
    }
    if (!images.empty()) {
      try {
        std::vector<ImageResult> results = model.run(images, options);
        for (std::size_t k = 0; k < results.size(); ++k) {
          const InputFile& input = inputs[slots[k]];
          nlohmann::json record = {{"path", input.path.string()}, {"model", model_name_}};
          record.update(to_json(results[k]));
          if (!annotate_dir_.empty()) save_annotated(input.path, images[k], results[k], record);
          records[slots[k]] = std::move(record);
        }
      } catch (const Error& e) {
        for (std::size_t slot : slots)
          records[slot] = error_record(inputs[slot].path, error_code_name(e.code()), e.what());
      }
    }
    for (nlohmann::json& record : records) emit(record);
  }

  void save_annotated(const std::filesystem::path& input, const Image& image, const ImageResult& result,
                      nlohmann::json& record) {
    std::filesystem::path target = unique_output(annotate_dir_, input, used_names_);
    cv::Mat bgr;
    cv::cvtColor(draw_detections(image, result), bgr, cv::COLOR_RGB2BGR);
    bool written = false;
    try {
      written = cv::imwrite(target.string(), bgr);
    } catch (const cv::Exception&) {
      written = false;
    }
    if (written) {
      record["annotated"] = target.string();
    } else {
      record["error"] = {{"code", "io_error"}, {"message", "cannot write annotated image " + target.string()}};
    }
  }

  void emit(const nlohmann::json& record) {
    if (record.contains("error")) {
      ++failures_;
      std::cerr << (progress_ ? "\n" : "") << "vlmserve: " << record["path"].get<std::string>() << ": "
                << record["error"]["message"].get<std::string>() << '\n';
    }
    out_ << record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    out_.flush();
    if (!out_) throw Error(ErrorCode::kIo, "cannot write results (disk full?)");
  }

  const Settings& settings_;
  std::ostream& out_;
  bool progress_;
  std::string model_name_;
  std::filesystem::path annotate_dir_;
  std::set<std::string> used_names_;
  std::size_t failures_ = 0;
};

int run_detect(DetectState& state) {
  try {
    state.settings.resolve();
    apply_process_settings(state.settings);
    const Options& options = state.settings.options();
    if (options.models.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--model is required (or set VLM_MODEL): a YOLO TorchScript export or a "
                  "Florence-2 folder; see README.md, 'Getting models'");
    }
    std::vector<InputFile> inputs = expand_inputs(state.paths, options.detect_run.recursive);
    const std::string& out_path = options.detect_run.out;
    std::ofstream file;
    if (!out_path.empty()) {
      file.open(out_path, std::ios::trunc);
      if (!file) throw Error(ErrorCode::kIo, "cannot open --out file " + out_path);
    }
    DetectRun run(state.settings, out_path.empty() ? std::cout : file);
    return run.run(inputs);
  } catch (const std::exception& e) {
    return report_fatal(e);
  }
}

}  // namespace

Subcommand add_detect_command(CLI::App& root) {
  auto state = std::make_shared<DetectState>();
  CLI::App* app = root.add_subcommand("detect", "Detect objects (or run a Florence-2 task) on image files and folders");
  app->add_option("paths", state->paths, "Image files and folders")->required();
  state->settings.register_flags(*app);
  app->footer(
      "Writes one JSON line per image: path, width, height, model, detections [{label, class_id, score, box: "
      "[x1, y1, x2, y2]}], timings. Unreadable images get an error record. Exit status: 0 all images done, 1 some "
      "failed, 2 bad usage or model.");
  return {app, [state] { return run_detect(*state); }};
}

}  // namespace vlm::cli
