// `vlmserve detect PATH...`: one record per image or video frame; bad inputs are recorded and the run goes on.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "categories.h"
#include "command.h"
#include "common.h"
#include "detection_files.h"
#include "hub_settings.h"
#include "input_files.h"
#include "progress_bar.h"
#include "result_writer.h"
#include "video_source.h"
#include "vlm/annotate.h"
#include "vlm/error.h"
#include "vlm/hub/resolve.h"
#include "vlm/logging.h"
#include "vlm/model_json.h"

namespace vlm::cli {
namespace {

namespace fs = std::filesystem;

struct DetectState {
  Settings settings{"detect"};
  std::vector<std::string> paths;
};

nlohmann::json error_record(nlohmann::json record, std::string_view code, const std::string& message) {
  record["error"] = {{"code", code}, {"message", message}};
  return record;
}

nlohmann::json error_record(const fs::path& path, std::string_view code, const std::string& message) {
  return error_record(nlohmann::json{{"path", path.string()}}, code, message);
}

// An image waiting for its forward pass, or a record already decided (an input that failed): kept
// in input order so that records come out in the order the inputs were given.
struct Pending {
  nlohmann::json record;  // path (and frame, timestamp_s); a whole error record when image is empty
  std::optional<Image> image;
  std::string stem;                                  // output file stem: "<name>", "<name>_<frame>" for frames
  std::string extension;                             // annotated image's extension
  VideoAnnotationWriter* annotated_video = nullptr;  // where an annotated frame goes
};

std::vector<std::uint8_t> read_stdin() {
  // Reading a terminal would wait for typed bytes: a forgotten pipe would look like a hang.
  if (isatty(STDIN_FILENO) == 1) {
    throw Error(ErrorCode::kEmptyInput, "standard input ('-') is a terminal: pipe image bytes into it");
  }
  std::cin >> std::noskipws;
  std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  if (bytes.empty()) throw Error(ErrorCode::kEmptyInput, "standard input ('-') is empty: pipe image bytes into it");
  return bytes;
}

class DetectRun {
 public:
  DetectRun(const Settings& settings, std::ostream& out)
      : settings_(settings),
        run_options_(settings.options().detect_run),
        out_(out),
        progress_(std::cerr, isatty(STDERR_FILENO) == 1, 0) {}

  int run(const std::vector<InputFile>& inputs) {
    check_result_format(run_options_.format);
    ModelSpec spec = parse_model_spec(settings_.options().models.back());
    ModelOptions load_options = model_options(settings_);
    options_ = detect_options(settings_);
    image_options_ = image_load_options(settings_);
    batch_ = static_cast<std::size_t>(run_options_.batch);
    for (const std::string& dir : {run_options_.save_annotated, run_options_.save_txt, run_options_.save_crop}) {
      if (!dir.empty()) fs::create_directories(dir);
    }
    if (!run_options_.save_crop.empty()) crops_.emplace(run_options_.save_crop);
    model_name_ = spec.name;
    std::unique_ptr<Model> model = load_model(hub::resolve_model_path(spec.path, hub_options(settings_)), load_options);
    // A request the model cannot take is bad usage (exit 2), not a failure of every image.
    model->check_options(options_);
    categories_.emplace(model->info().classes);
    writer_ = make_result_writer(run_options_.format, out_, *categories_);
    // Loading warmed batches of one; a first full batch of another size would otherwise pay that
    // shape's one-time costs and report inflated timings.
    bool has_video =
        std::any_of(inputs.begin(), inputs.end(), [](const InputFile& i) { return i.kind == InputKind::kVideo; });
    const std::size_t first_batch = has_video ? batch_ : std::min(inputs.size(), batch_);
    if (first_batch > 1) model->warm_up(static_cast<int>(first_batch));
    model_ = model.get();

    progress_.set_total(static_cast<long>(inputs.size()));
    progress_.start();
    for (const InputFile& input : inputs) {
      switch (input.kind) {
        case InputKind::kVideo:
          if (input.error_code.empty()) {
            add_video(input.path);
            break;
          }
          [[fallthrough]];
        case InputKind::kImage:
        case InputKind::kStdin: add_image(input); break;
      }
    }
    flush();
    writer_->finish();
    progress_.finish();
    double seconds = progress_.elapsed_s();
    std::string videos =
        videos_ == 0 ? "" : fmt::format(", {} frames of {} video{}", frames_done_, videos_, videos_ == 1 ? "" : "s");
    log::info("{} images{}, {} failed, in {:.1f} s ({:.1f}/s)", images_done_, videos, failures_, seconds,
              seconds > 0 ? static_cast<double>(images_done_ + frames_done_) / seconds : 0.0);
    return failures_ == 0 ? kExitOk : kExitSomeInputsFailed;
  }

 private:
  void add_image(const InputFile& input) {
    Pending item;
    item.record = {{"path", input.path.string()}};
    if (!input.error_code.empty()) {
      item.record = error_record(input.path, input.error_code, input.error_message);
      return push(std::move(item));
    }
    try {
      if (input.kind == InputKind::kStdin) {
        item.image = decode_image(read_stdin(), image_options_);
        item.stem = "stdin";
        item.extension = ".jpg";
      } else {
        item.image = load_image(input.path, image_options_);
        item.stem = input.path.stem().string();
        item.extension = input.path.extension().string();
        if (item.extension == ".gif" || item.extension.empty()) item.extension = ".jpg";
      }
    } catch (const Error& e) {
      item.record = error_record(input.path, error_code_name(e.code()), e.what());
      item.image.reset();
    }
    push(std::move(item));
  }

  void add_video(const fs::path& path) {
    ++videos_;
    std::optional<VideoReader> reader;
    try {
      reader.emplace(path, run_options_.vid_stride, image_options_);
    } catch (const Error& e) {
      return push({error_record(path, error_code_name(e.code()), e.what()), std::nullopt, "", "", nullptr});
    }
    // The video counted as one item until its frame count was known.
    progress_.set_total(progress_.total() + std::max(1L, reader->expected_frames()) - 1);
    std::unique_ptr<VideoAnnotationWriter> annotated;
    const std::string stem = path.stem().string();
    long frames = 0;
    while (std::optional<VideoFrame> frame = reader->next()) {
      if (!run_options_.save_annotated.empty() && !annotated) {
        fs::path target = unique_output(run_options_.save_annotated, stem, ".mp4", annotated_names_);
        annotated = std::make_unique<VideoAnnotationWriter>(target, reader->fps() / run_options_.vid_stride,
                                                            frame->image.width(), frame->image.height());
      }
      Pending item;
      item.record = {{"path", path.string()}, {"frame", frame->index}, {"timestamp_s", frame->timestamp_s}};
      item.stem = stem + "_" + std::to_string(frame->index);
      item.image = std::move(frame->image);
      item.annotated_video = annotated.get();
      push(std::move(item));
      ++frames;
    }
    // Frames still waiting must reach the annotated video before it is closed.
    flush();
    if (frames == 0) {
      push({error_record(path, error_code_name(ErrorCode::kUnreadableVideo),
                         "cannot read video " + path.string() + ": no frame decodes"),
            std::nullopt, "", "", nullptr});
    }
  }

  void push(Pending item) {
    if (item.image) ++pending_images_;
    pending_.push_back(std::move(item));
    if (pending_images_ >= batch_) flush();
  }

  void flush() {
    std::vector<Image> images;
    for (const Pending& item : pending_) {
      if (item.image) images.push_back(*item.image);
    }
    std::vector<ImageResult> results;
    std::optional<Error> failure;
    if (!images.empty()) {
      try {
        results = model_->run(images, options_);
      } catch (const Error& e) {
        failure = e;
      }
    }
    std::size_t k = 0;
    for (Pending& item : pending_) {
      if (!item.image) {
        emit(item.record);
        continue;
      }
      if (failure) {
        emit(error_record(item.record, error_code_name(failure->code()), failure->what()));
      } else {
        write_outputs(item, results[k++]);
        emit(item.record);
      }
      ++(item.record.contains("frame") ? frames_done_ : images_done_);
    }
    pending_.clear();
    pending_images_ = 0;
  }

  // The record of a successful image, then its files (annotated copy, label file, crops); a file
  // that cannot be written turns the record into an error record.
  void write_outputs(Pending& item, const ImageResult& result) {
    nlohmann::json& record = item.record;
    record["model"] = model_name_;
    record.update(to_json(result));
    try {
      if (!run_options_.save_annotated.empty()) save_annotated(item, result);
      if (!run_options_.save_txt.empty()) save_labels(item, result);
      if (crops_) crops_->write(*item.image, result, item.stem);
    } catch (const Error& e) {
      record["error"] = {{"code", error_code_name(e.code())}, {"message", e.what()}};
    }
  }

  void save_annotated(Pending& item, const ImageResult& result) {
    cv::Mat drawn = draw_detections(*item.image, result);
    if (item.annotated_video != nullptr) {
      if (!item.annotated_video->is_open()) {
        throw Error(ErrorCode::kIo, "cannot write annotated video " + item.annotated_video->path().string());
      }
      item.annotated_video->write(drawn);
      item.record["annotated"] = item.annotated_video->path().string();
      return;
    }
    fs::path target = unique_output(run_options_.save_annotated, item.stem, item.extension, annotated_names_);
    cv::Mat bgr;
    cv::cvtColor(drawn, bgr, cv::COLOR_RGB2BGR);
    bool written = false;
    try {
      written = cv::imwrite(target.string(), bgr);
    } catch (const cv::Exception&) {
      written = false;
    }
    if (!written) throw Error(ErrorCode::kIo, "cannot write annotated image " + target.string());
    item.record["annotated"] = target.string();
  }

  void save_labels(const Pending& item, const ImageResult& result) {
    fs::path target = unique_output(run_options_.save_txt, item.stem, ".txt", label_names_);
    std::ofstream file(target, std::ios::trunc);
    file << yolo_label_text(result, *categories_, run_options_.save_conf);
    file.close();
    if (!file) throw Error(ErrorCode::kIo, "cannot write label file " + target.string());
  }

  void emit(const nlohmann::json& record) {
    if (record.contains("error")) {
      ++failures_;
      progress_.clear();
      std::cerr << "vlmserve: " << record["path"].get<std::string>() << ": "
                << record["error"]["message"].get<std::string>() << '\n';
    }
    writer_->write(record);
    progress_.advance(1);
  }

  const Settings& settings_;
  const DetectRunOptions& run_options_;
  std::ostream& out_;
  ProgressBar progress_;
  DetectOptions options_;
  ImageLoadOptions image_options_;
  std::size_t batch_ = 1;
  Model* model_ = nullptr;
  std::string model_name_;
  std::optional<Categories> categories_;
  std::unique_ptr<ResultWriter> writer_;
  std::optional<CropWriter> crops_;
  std::vector<Pending> pending_;
  std::size_t pending_images_ = 0;
  std::set<std::string> annotated_names_;
  std::set<std::string> label_names_;
  std::size_t images_done_ = 0;
  std::size_t frames_done_ = 0;
  std::size_t videos_ = 0;
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
    check_result_format(options.detect_run.format);
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
  CLI::App* app = root.add_subcommand(
      "detect", "Detect objects (or run a Florence-2 task) on images, videos, folders, glob patterns or '-' (stdin)");
  app->add_option("paths", state->paths, "Image and video files, folders, quoted glob patterns, '-' for stdin")
      ->required();
  state->settings.register_flags(*app);
  app->footer(
      "Writes one record per image or video frame (--format jsonl, the default: path, [frame, timestamp_s], width, "
      "height, model, detections [{label, class_id, score, box: [x1, y1, x2, y2]}], timings), one COCO document "
      "(--format coco) or CSV rows (--format csv). Unreadable inputs get an error record. Exit status: 0 all inputs "
      "done, 1 some failed, 2 bad usage or model.");
  return {app, [state] { return run_detect(*state); }};
}

}  // namespace vlm::cli
