#include "yolo_model.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <chrono>
#include <fstream>
#include <memory>

#include "postprocess.h"
#include "vlm/cuda_graph.h"
#include "vlm/device.h"
#include "vlm/error.h"
#include "vlm/image.h"
#include "vlm/logging.h"
#include "vlm/ops/letterbox.h"
#include "vlm/ops/letterbox_batch.h"
#include "vlm/runtime.h"
#include "yolo_metadata.h"

namespace vlm::yolo {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// torch.jit.trace records each convolution's allow_tf32 flag as a constant (true by default), so the
// process-wide precision setting never reaches a traced export: on CUDA "fp32" would run TF32
// convolutions (10-bit mantissa, scores off by ~1e-3). Rewrites that argument to false.
void force_ieee_convolutions(torch::jit::Block* block, torch::jit::Graph& graph) {
  static const auto kConvolution = c10::Symbol::fromQualString("aten::_convolution");
  constexpr std::size_t kAllowTf32Input = 12;
  for (torch::jit::Node* node : block->nodes()) {
    for (torch::jit::Block* inner : node->blocks()) force_ieee_convolutions(inner, graph);
    if (node->kind() == kConvolution && node->inputs().size() == kAllowTf32Input + 1) {
      torch::jit::WithInsertPoint guard(node);
      node->replaceInput(kAllowTf32Input, graph.insertConstant(false));
    }
  }
}

void force_ieee_convolutions(torch::jit::Module& module) {
  for (const torch::jit::Module& sub : module.modules()) {
    for (const torch::jit::Method& method : sub.get_methods()) {
      std::shared_ptr<torch::jit::Graph> graph = method.graph();
      force_ieee_convolutions(graph->block(), *graph);
    }
  }
}

class YoloModel final : public Model {
 public:
  YoloModel(torch::jit::Module module, YoloMetadata meta, ModelInfo info, torch::Device device, torch::Dtype dtype,
            bool cuda_graphs)
      : module_(std::move(module)),
        meta_(std::move(meta)),
        info_(std::move(info)),
        device_(device),
        dtype_(dtype),
        letterbox_(meta_.image_width, meta_.image_height, device, dtype),
        optimize_graph_(device.is_cuda()),
        capture_graphs_(device.is_cuda() && cuda_graphs) {
    info_.cuda_graphs = device.is_cuda() ? (cuda_graphs ? "on" : "off") : "none";
  }

  const ModelInfo& info() const override { return info_; }
  // LetterboxBatch resizes device images on CUDA with the same code as uploaded host ones.
  bool accepts_device_images() const override { return device_.is_cuda(); }
  void set_load_ms(double load_ms) { info_.load_ms = load_ms; }

  void check_options(const DetectOptions& options) const override {
    validate(options);
    check_class_ids(options, meta_.names);
    // Detecting anyway would answer a different question than the one asked.
    if (!options.task.empty() || !options.text.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "this is a YOLO model: it only detects and takes no task or text (got " +
                      std::string(options.task.empty() ? "text" : "task '" + options.task.substr(0, 64) + "'") +
                      "); tasks are for Florence-2 models");
    }
    if (options.has_generation_settings()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "this is a YOLO model: it generates no text and takes no num_beams, max_new_tokens, "
                  "no_repeat_ngram_size, length_penalty or early_stopping; they are for Florence-2 models");
    }
  }

  std::vector<ImageResult> run(std::span<const Image> images, const DetectOptions& options) override {
    check_options(options);
    if (images.empty()) return {};
    auto start = Clock::now();
    std::vector<ops::Letterbox> boxes;
    at::Tensor input = letterbox_.make_input(images, boxes);
    double preprocess_ms = ms_since(start);

    start = Clock::now();
    at::Tensor output = run_forward(input);
    synchronize(device_);
    double inference_ms = ms_since(start);

    start = Clock::now();
    std::vector<ImageResult> results(images.size());
    // The whole batch's detections in one copy; the rest is a few hundred rows of host arithmetic.
    const at::Tensor batch_rows = select_detections(output, layout_, options).cpu();
    for (std::size_t i = 0; i < images.size(); ++i) {
      at::Tensor rows = batch_rows.select(0, static_cast<int64_t>(i));
      rows = rows.slice(0, 0, detection_count(rows));
      rescale_to_original(rows, boxes[i], images[i].width(), images[i].height(), meta_.image_width, meta_.image_height,
                          meta_.exporter);
      fill_result(rows, images[i], results[i]);
    }
    double postprocess_ms = ms_since(start);
    // Batch cost is shared equally: the pass is one for all images.
    const auto n = static_cast<double>(images.size());
    for (ImageResult& result : results) result.timings = {preprocess_ms / n, inference_ms / n, postprocess_ms / n};
    return results;
  }

  void warm_up(int batch_max) override {
    // With the graph optimiser on (CUDA), every batch size is a new shape to profile and compile;
    // off (CPU), only allocator growth is left to pay, and powers of two cover it.
    std::vector<int> sizes;
    if (optimize_graph_) {
      for (int size = 1; size <= std::max(1, batch_max); ++size) sizes.push_back(size);
    } else {
      sizes = warm_up_batch_sizes(batch_max);
    }
    cv::Mat gray(meta_.image_height, meta_.image_width, CV_8UC3, cv::Scalar(114, 114, 114));
    std::vector<at::Tensor> inputs;
    for (int size : sizes) {
      std::vector<Image> images(static_cast<std::size_t>(size), Image{gray});
      std::vector<ops::Letterbox> boxes;
      inputs.push_back(letterbox_.make_input(images, boxes));
      // The profiling executor profiles a shape on its first run and compiles it on the second.
      for (int pass = 0; pass < (optimize_graph_ ? 3 : 1); ++pass) {
        const at::Tensor output = forward(inputs.back());
        synchronize(device_);
        layout_ = detect_head_layout(output, meta_);
      }
    }
    if (capture_graphs_ && static_cast<std::size_t>(sizes.back()) > graphs_.size()) capture_forward(inputs);
  }

 private:
  // The forward pass at one batch size, captured as a CUDA graph: `input` is where each batch is
  // copied before a replay, `output` where the replay leaves its result.
  struct ForwardGraph {
    CudaGraph graph;
    at::Tensor input;
    at::Tensor output;
  };

  // Captures the forward pass at each batch size of `examples` [1..N], after the executor has seen
  // them all: a shape it meets later can change the plans it runs for the others, so graphs are made
  // again from scratch when a warm-up adds sizes. They share one memory pool: replays never overlap
  // (one worker thread) and each output stays referenced by its ForwardGraph while it is read.
  void capture_forward(const std::vector<at::Tensor>& examples) {
    graphs_.clear();
    for (const at::Tensor& example : examples) {
      auto graph = std::make_unique<ForwardGraph>();
      graph->input = example.clone();
      const std::string failure = graph->graph.capture([&] { graph->output = forward(graph->input); },
                                                       [&] { graph->output = forward(graph->input); },
                                                       graphs_.empty() ? nullptr : &graphs_.front()->graph);
      if (!failure.empty()) {
        // A failure is the export's, not the batch size's: every size would fail alike.
        capture_graphs_ = false;
        graphs_.clear();
        info_.cuda_graphs = "failed: " + failure;
        log::warn("yolo: {}: the forward pass runs eagerly, CUDA graph capture failed: {}", info_.source, failure);
        return;
      }
      graphs_.push_back(std::move(graph));
    }
  }

  // A replay where this batch size was captured at warm-up, else the eager pass.
  at::Tensor run_forward(const at::Tensor& input) {
    const auto size = static_cast<std::size_t>(input.size(0));
    if (size == 0 || size > graphs_.size()) return forward(input);
    ForwardGraph& graph = *graphs_[size - 1];
    graph.input.copy_(input);
    graph.graph.replay();
    return graph.output;
  }

  at::Tensor forward(const at::Tensor& input) {
    torch::NoGradGuard no_grad;
    // The guard is thread-local, so it holds for whichever thread runs the model.
    torch::jit::GraphOptimizerEnabledGuard optimizer(optimize_graph_);
    torch::jit::IValue out = module_.forward({input});
    // Exports return a tensor, or a tuple/list whose first element is the detection output.
    while (out.isTuple() || out.isList() || out.isTensorList()) {
      if (out.isTuple()) {
        out = out.toTupleRef().elements().at(0);
      } else if (out.isTensorList()) {
        out = out.toTensorList().get(0);
      } else {
        out = out.toListRef().at(0);
      }
    }
    if (!out.isTensor()) throw Error(ErrorCode::kUnsupportedModel, info_.source + ": model output is not a tensor");
    return out.toTensor();
  }

  void fill_result(const at::Tensor& rows, const Image& image, ImageResult& result) const {
    result.width = image.width();
    result.height = image.height();
    auto r = rows.accessor<float, 2>();
    for (int64_t i = 0; i < rows.size(0); ++i) {
      Detection detection;
      detection.class_id = static_cast<int>(r[i][5]);
      detection.label = detection.class_id >= 0 && detection.class_id < static_cast<int>(meta_.names.size())
                            ? meta_.names[detection.class_id]
                            : std::to_string(detection.class_id);
      detection.score = r[i][4];
      detection.box = {r[i][0], r[i][1], r[i][2], r[i][3]};
      result.detections.push_back(std::move(detection));
    }
  }

  torch::jit::Module module_;
  YoloMetadata meta_;
  ModelInfo info_;
  torch::Device device_;
  torch::Dtype dtype_;
  ops::LetterboxBatch letterbox_;
  // TorchScript's profiling executor profiles the first pass of each input shape and re-optimises
  // on the next: a stall of 0.4 s on an H100 (yolov5n) for a live server's first batch of a new
  // size. On CUDA the optimised graph is worth keeping (yolov5n batch 1 steady state 2.6 vs 3.7 ms
  // fp32, 3.7 vs 5.6 ms fp16, H100), so every batch size is warmed at load; on CPU it ran no faster
  // (docs/server.md), so it is off and no shape stalls.
  bool optimize_graph_;
  // On CUDA (unless --cuda-graphs=false), each batch size warm_up() sees is captured once and
  // replayed: at batch 1 the eager pass of a nano model is launch-bound.
  bool capture_graphs_;
  std::vector<std::unique_ptr<ForwardGraph>> graphs_;  // index: batch size - 1
  HeadLayout layout_ = HeadLayout::kAnchorFree;
};

}  // namespace

bool is_torchscript_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

std::unique_ptr<Model> load_yolo_model(const std::filesystem::path& path, const ModelOptions& options) {
  auto start = Clock::now();
  torch::Device device = parse_device(options.device);
  if (options.half && !device.is_cuda()) {
    throw Error(ErrorCode::kInvalidArgument, "--half needs a CUDA device; fp16 on CPU is slower and less exact");
  }
  torch::Dtype dtype = options.half ? torch::kHalf : torch::kFloat;
  torch::jit::ExtraFilesMap extra{{"config.txt", ""}};
  torch::jit::Module module;
  try {
    module = torch::jit::load(path.string(), device, extra);
  } catch (const c10::Error& e) {
    throw Error(ErrorCode::kBadCheckpoint, path.string() + " is not a loadable TorchScript file: " +
                                               std::string(e.what_without_backtrace()).substr(0, 300));
  }
  YoloMetadata meta = parse_yolo_metadata(extra["config.txt"], path.string());
  module.eval();
  module.to(dtype);
  if (device.is_cuda() && dtype == torch::kFloat) {
    require_exact_float32();
    force_ieee_convolutions(module);
  }

  ModelInfo info;
  info.family = "yolo";
  info.source = path.string();
  info.tasks = {"detect"};
  info.classes = meta.names;
  info.device = device.str();
  info.dtype = options.half ? "float16" : "float32";
  info.attention = "none";
  info.image_size = std::max(meta.image_height, meta.image_width);
  auto model = std::make_unique<YoloModel>(std::move(module), meta, info, device, dtype, options.cuda_graphs);
  try {
    model->warm_up(1);
  } catch (const c10::Error& e) {
    throw Error(ErrorCode::kUnsupportedModel,
                path.string() + ": forward pass failed: " + std::string(e.what_without_backtrace()).substr(0, 300));
  }
  model->set_load_ms(ms_since(start));
  log::info("loaded YOLO model {} ({} classes, {}x{}, {} on {}) in {:.0f} ms", path.string(), meta.names.size(),
            meta.image_width, meta.image_height, model->info().dtype, device.str(), model->info().load_ms);
  return model;
}

}  // namespace vlm::yolo
