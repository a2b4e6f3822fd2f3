// Times vlmserve's Florence-2 pipeline in-process, one configuration per run, and prints one JSON
// line that bench/florence2/transformers_reference.py prints the same way for transformers:
//   bench_florence2 --model DIR --images a.jpg,b.jpg --device cuda --dtype fp16 --batch 8
//                   --mode generate|vision|decoder-step [--task "<OD>"] [--num-beams 3]
//                   [--max-new-tokens 64] [--suppress-eos] [--warmup 1] [--repeats 5]
//                   [--cache-length 128] [--attention auto] [--profile N]
// The batch is photos[i % photos] for i < batch: both sides get the same images, and a call's time
// is the whole batch's (never divided by it).
//   generate      vision encoder, projector, BART encoder and generation (pixel values already on the
//                 device, as transformers' generate() gets them); ids come back per row
//   vision        the DaViT vision encoder alone
//   decoder-step  one generation step (decoder, LM head, logits processing and the search's choice)
//                 for batch x num_beams rows against a cache that already holds --cache-length
//                 positions; each repeat is the next step
// "graph" in the JSON line says whether the decode step ran as a replayed CUDA graph.
// --profile N (decoder-step only) prints tables instead of the JSON line: the step's wall time with
// the graph replayed and eager (N steps back to back), then N steps of each under libtorch's Kineto
// profiler: per kernel (per host op on the CPU) calls and time per step and share, the host's CUDA
// calls and launches per step, and the eager step's time per decoder part (step_profile.h).
// --suppress-eos bans the EOS ids until max_new_tokens (transformers' min_new_tokens), so greedy
// generates the full length on both sides.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bart.h"
#include "generation.h"
#include "pipeline.h"
#include "step_profile.h"
#include "task_prompts.h"
#include "vlm/device.h"
#include "vlm/error.h"
#include "vlm/image.h"
#include "vlm/ops/attention.h"
#include "vlm/runtime.h"
#include "vlm/tokenizer.h"

namespace {

using vlm::Error;
using vlm::ErrorCode;
using namespace vlm::florence2;

struct Args {
  std::string model;
  std::vector<std::string> images;
  std::string device = "cpu";
  std::string dtype = "fp32";
  std::string mode = "generate";
  std::string task = "<OD>";
  std::string attention = "auto";
  int batch = 1;
  int num_beams = 1;
  int max_new_tokens = 64;
  bool suppress_eos = false;
  int warmup = 1;
  int repeats = 5;
  int cache_length = 128;
  int profile = 0;  // decode steps to profile; 0: no profile
};

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, sep);) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

int to_int(const std::string& flag, const std::string& value, int min) {
  std::size_t used = 0;
  int parsed = 0;
  try {
    parsed = std::stoi(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || parsed < min) {
    throw Error(ErrorCode::kInvalidArgument,
                flag + " needs an integer >= " + std::to_string(min) + ", got '" + value + "'");
  }
  return parsed;
}

Args parse_args(int argc, char** argv) {
  Args args;
  const std::map<std::string, std::function<void(const std::string&)>> valued = {
      {"--model", [&](const std::string& v) { args.model = v; }},
      {"--images", [&](const std::string& v) { args.images = split(v, ','); }},
      {"--device", [&](const std::string& v) { args.device = v; }},
      {"--dtype", [&](const std::string& v) { args.dtype = v; }},
      {"--mode", [&](const std::string& v) { args.mode = v; }},
      {"--task", [&](const std::string& v) { args.task = v; }},
      {"--attention", [&](const std::string& v) { args.attention = v; }},
      {"--batch", [&](const std::string& v) { args.batch = to_int("--batch", v, 1); }},
      {"--num-beams", [&](const std::string& v) { args.num_beams = to_int("--num-beams", v, 1); }},
      {"--max-new-tokens", [&](const std::string& v) { args.max_new_tokens = to_int("--max-new-tokens", v, 1); }},
      {"--warmup", [&](const std::string& v) { args.warmup = to_int("--warmup", v, 0); }},
      {"--repeats", [&](const std::string& v) { args.repeats = to_int("--repeats", v, 1); }},
      {"--cache-length", [&](const std::string& v) { args.cache_length = to_int("--cache-length", v, 1); }},
      {"--profile", [&](const std::string& v) { args.profile = to_int("--profile", v, 1); }},
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--suppress-eos") {
      args.suppress_eos = true;
      continue;
    }
    const auto it = valued.find(flag);
    if (it == valued.end()) throw Error(ErrorCode::kInvalidArgument, "unknown option '" + flag + "'");
    if (i + 1 >= argc) throw Error(ErrorCode::kInvalidArgument, flag + " needs a value");
    it->second(argv[++i]);
  }
  if (args.model.empty()) throw Error(ErrorCode::kInvalidArgument, "--model is required");
  if (args.images.empty()) throw Error(ErrorCode::kInvalidArgument, "--images needs at least one photo");
  if (args.mode != "generate" && args.mode != "vision" && args.mode != "decoder-step") {
    throw Error(ErrorCode::kInvalidArgument,
                "--mode must be generate, vision or decoder-step, got '" + args.mode + "'");
  }
  if (args.profile > 0 && args.mode != "decoder-step") {
    throw Error(ErrorCode::kInvalidArgument, "--profile needs --mode decoder-step, got --mode '" + args.mode + "'");
  }
  return args;
}

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "fp32") return at::kFloat;
  if (name == "fp16") return at::kHalf;
  if (name == "bf16") return at::kBFloat16;
  throw Error(ErrorCode::kInvalidArgument, "--dtype must be fp32, fp16 or bf16, got '" + name + "'");
}

// <s> prompt </s>, as Florence2Model builds a request's prompt.
at::Tensor prompt_ids(const std::string& model_dir, const std::string& task, std::int64_t batch) {
  vlm::Tokenizer tokenizer = vlm::Tokenizer::from_directory(model_dir);
  tokenizer.add_special_tokens(processor_added_tokens());
  std::vector<std::int64_t> ids{tokenizer.bos_id().value_or(0)};
  for (const auto id : tokenizer.encode(request_prompt(task, ""), /*add_special_tokens=*/false)) ids.push_back(id);
  ids.push_back(tokenizer.eos_id().value_or(2));
  return at::tensor(ids, at::kLong).unsqueeze(0).expand({batch, static_cast<std::int64_t>(ids.size())}).contiguous();
}

// Median and all times of `repeats` synchronised calls after `warmup` untimed ones.
std::vector<double> time_calls(const c10::Device& device, int warmup, int repeats, const std::function<void()>& call) {
  for (int i = 0; i < warmup; ++i) call();
  vlm::synchronize(device);
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    call();
    vlm::synchronize(device);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return times;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// Tokens after the start token up to and including the first EOS (all of them when none ends),
// counted per row: the rule transformers_reference.py applies to its ids.
std::int64_t generated_tokens(const std::vector<std::vector<std::int64_t>>& rows, const std::vector<int>& eos) {
  std::int64_t total = 0;
  for (const auto& row : rows) {
    std::int64_t n = static_cast<std::int64_t>(row.size()) - 1;
    for (std::size_t i = 1; i < row.size(); ++i) {
      if (std::find(eos.begin(), eos.end(), row[i]) != eos.end()) {
        n = static_cast<std::int64_t>(i);
        break;
      }
    }
    total += n;
  }
  return total;
}

// Mean wall time of one step over `steps` back-to-back steps (one synchronisation at the end, as
// generation runs them) after `warmup` untimed ones.
double step_ms(const c10::Device& device, int warmup, int steps, const std::function<void()>& step) {
  for (int i = 0; i < warmup; ++i) step();
  vlm::synchronize(device);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  vlm::synchronize(device);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / steps;
}

// --profile: the decode step replayed as a CUDA graph (DecodeState, CUDA only) and run eagerly (the
// search alone, as the CPU and a failed capture run it), each after --cache-length steps, timed and
// then profiled for args.profile steps. The graph is captured before the first profiling session:
// a CUPTI session before a capture has been seen to leave kernel collection dead for the process.
int run_profile(const Args& args, const Pipeline& pipeline, const at::Tensor& encoded,
                const GenerationConfig& generation) {
  const c10::Device device = encoded.device();
  const int positions = args.cache_length + args.warmup + 2 * args.profile + 1;
  if (positions > pipeline.config().text.max_position_embeddings + 1) {
    throw Error(ErrorCode::kInvalidArgument,
                "--cache-length " + std::to_string(args.cache_length) + " plus the warm-up and twice --profile " +
                    std::to_string(args.profile) + " steps exceeds the decoder's positions");
  }
  const DecodeShape shape{args.batch, args.num_beams, encoded.size(1), positions};
  const GenerationValues values = generation_values(generation, positions);
  std::optional<DecodeState> graph;
  std::string graph_line = "graph replay - (CUDA only)";
  if (device.is_cuda()) {
    graph.emplace(pipeline.decoder(), generation, shape, encoded.options());
    graph->start(encoded, values);
    if (!graph->graphed()) {
      graph.reset();
      graph_line = "graph replay - (capture failed: the log says why)";
    }
  }
  const std::unique_ptr<Search> eager =
      make_search(pipeline.decoder(), shape_settings(generation), shape, encoded.options());
  eager->reset(encoded, values);
  for (int i = 0; i < args.cache_length; ++i) eager->step();
  const double eager_ms = step_ms(device, args.warmup, args.profile, [&] { eager->step(); });
  double graph_ms = 0;
  if (graph) {
    for (int i = 0; i < args.cache_length; ++i) graph->step();
    graph_ms = step_ms(device, args.warmup, args.profile, [&] { graph->step(); });
    graph_line = fmt::format("graph replay {:.3f} ms", graph_ms);
  }
  // The same graph captured with programmatic dependent launch off: what the overlap of each kernel's
  // start with the previous one's tail gains (nothing on GPUs before sm_90, where it is never on).
  std::string launch_line;
  if (graph && vlm::programmatic_dependent_launch()) {
    vlm::set_programmatic_dependent_launch(false);
    DecodeState serial(pipeline.decoder(), generation, shape, encoded.options());
    serial.start(encoded, values);
    vlm::set_programmatic_dependent_launch(true);
    if (serial.graphed()) {
      for (int i = 0; i < args.cache_length; ++i) serial.step();
      const double serial_ms = step_ms(device, args.warmup, args.profile, [&] { serial.step(); });
      launch_line =
          fmt::format(", {:.3f} ms with programmatic dependent launch off ({:.2f}x)", serial_ms, serial_ms / graph_ms);
    }
  }
  std::optional<bench::StepProfile> graph_profile;
  if (graph) graph_profile = bench::profile_steps(device, args.profile, [&] { graph->step(); });
  const bench::StepProfile eager_profile = bench::profile_steps(device, args.profile, [&] { eager->step(); });

  std::ostringstream out;
  out << fmt::format(
             "== Florence-2 decode step profile: {} {}, attention {}, batch {} x {} beam(s) = {} rows, {} "
             "cached positions, {} steps per run\n",
             args.device, args.dtype, vlm::attention_backend_name(pipeline.attention_backend()), args.batch,
             args.num_beams, args.batch * args.num_beams, args.cache_length, args.profile)
      << fmt::format(
             "step wall time without the profiler ({} steps back to back, one sync at the end): {}{}, eager "
             "{:.3f} ms\n\n",
             args.profile, graph_line, launch_line, eager_ms);
  if (graph_profile) {
    bench::print_profile(out, "graph replay", *graph_profile, graph_ms, /*with_parts=*/false);
  }
  bench::print_profile(out, "eager", eager_profile, eager_ms, /*with_parts=*/true);
  std::cout << out.str() << std::flush;
  return 0;
}

int run(const Args& args) {
  at::NoGradGuard no_grad;
  const c10::Device device = vlm::parse_device(args.device);
  const Pipeline pipeline(
      args.model, PipelineOptions{device, parse_dtype(args.dtype), vlm::parse_attention_backend(args.attention)});
  std::vector<vlm::Image> images;
  for (int i = 0; i < args.batch; ++i) images.push_back(vlm::load_image(args.images[i % args.images.size()]));
  const at::Tensor pixel_values = pipeline.image_processor()(images).to(device);
  const at::Tensor prompt = prompt_ids(args.model, args.task, args.batch);

  GenerationConfig generation = pipeline.config().generation;
  generation.num_beams = args.num_beams;
  generation.max_new_tokens = args.max_new_tokens;
  if (args.suppress_eos) generation.min_new_tokens = args.max_new_tokens;
  const int max_length = generation.resolved_max_length(args.max_new_tokens);

  nlohmann::json row = {{"side", "vlmserve"},
                        {"mode", args.mode},
                        {"device", args.device},
                        {"dtype", args.dtype},
                        {"batch", args.batch},
                        {"task", args.task},
                        {"num_beams", args.num_beams},
                        {"max_new_tokens", args.max_new_tokens},
                        {"suppress_eos", args.suppress_eos},
                        {"attention", std::string(vlm::attention_backend_name(pipeline.attention_backend()))}};
  std::vector<double> times;
  if (args.mode == "generate") {
    at::Tensor generated;
    times = time_calls(device, args.warmup, args.repeats, [&] {
      generated =
          pipeline.generate(pipeline.encode(pipeline.image_features(pixel_values), prompt), generation, max_length).ids;
    });
    const at::Tensor ids = generated.to(at::kCPU, at::kLong).contiguous();
    std::vector<std::vector<std::int64_t>> rows;
    for (std::int64_t r = 0; r < ids.size(0); ++r) {
      const auto* data = ids[r].data_ptr<std::int64_t>();
      rows.emplace_back(data, data + ids.size(1));
    }
    row["tokens"] = generated_tokens(rows, generation.eos_token_ids);
    row["graph"] = pipeline.last_generation_graphed();
    row["ids"] = rows;
  } else if (args.mode == "vision") {
    times = time_calls(device, args.warmup, args.repeats, [&] { pipeline.vision_features(pixel_values); });
  } else {
    // The step generation runs (decoder, LM head, logits processing, token choice, beam bookkeeping),
    // replayed as a CUDA graph where capture succeeds, after --cache-length steps filled the cache.
    const at::Tensor encoded = pipeline.encode(pipeline.image_features(pixel_values), prompt);
    if (args.profile > 0) return run_profile(args, pipeline, encoded, generation);
    const int positions = args.cache_length + args.warmup + args.repeats + 1;
    if (positions > pipeline.config().text.max_position_embeddings + 1) {
      throw Error(ErrorCode::kInvalidArgument, "--cache-length " + std::to_string(args.cache_length) +
                                                   " plus the timed steps exceeds the decoder's positions");
    }
    DecodeState state(pipeline.decoder(), generation,
                      DecodeShape{args.batch, args.num_beams, encoded.size(1), positions}, encoded.options());
    state.start(encoded, generation_values(generation, positions));
    for (int i = 0; i < args.cache_length; ++i) state.step();
    times = time_calls(device, args.warmup, args.repeats, [&] { state.step(); });
    row["rows"] = args.batch * args.num_beams;
    row["cache_length"] = args.cache_length;
    row["graph"] = state.graphed();
  }
  const double ms = median(times);
  row["ms"] = ms;
  row["ms_all"] = times;
  if (row.contains("tokens")) row["tokens_per_s"] = row["tokens"].get<double>() / (ms / 1000.0);
  std::cout << row.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_florence2: %s\n", e.what());
    return 2;
  }
}
