// Florence-2's greedy step kernel (GreedySelector::select on CUDA) against the ATen ops it replaces
// (GreedySelector::select_with_ops on the same device), step after step, eagerly and replayed as a
// CUDA graph: float32, float16 and bfloat16 logits; 1, 3 and 32 rows; prefixes drawn from a small
// alphabet so that n-grams repeat and bans fall on the best tokens; arg-max ties; finished rows;
// min_new_tokens; forced BOS and EOS; no_repeat_ngram_size 0 to 3. The chosen ids, finished rows,
// returned length and position must be identical; token log-probabilities within 1e-5 (the two sum
// the softmax in different orders). Then both are timed on a batch-1 fp16 step of Florence-2's
// vocabulary. Exits 77 (ctest: skipped) where no CUDA device is visible.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gpu_check.h"
#include "greedy_select.h"

namespace {

using vlm::florence2::GenerationConfig;
using vlm::florence2::GreedySelector;
using vlm::florence2::GreedyState;
using vlm::gpu_check::time_us;

constexpr std::int64_t kVocab = 51289;  // Florence-2's
constexpr std::int64_t kCapacity = 48;
constexpr std::int64_t kAlphabet = 6;  // prefix tokens 3..8: n-grams repeat within a few steps

GenerationConfig config(int ngram_window, int min_new_tokens, bool forced) {
  GenerationConfig c;
  c.no_repeat_ngram_size = ngram_window;
  c.min_new_tokens = min_new_tokens;
  if (forced) {
    c.forced_bos_token_id = 0;
    c.forced_eos_token_id = 2;
  }
  c.eos_token_ids = {2};
  c.pad_token_id = 1;
  return c;
}

GreedyState make_state(std::int64_t rows, int max_length, int ngram_size, const at::Device& device) {
  const auto long_options = at::TensorOptions().dtype(at::kLong).device(device);
  GreedyState s;
  // Prefix tokens drawn from a small alphabet, the start token first.
  s.ids = at::randint(3, 3 + kAlphabet, {rows, kCapacity}, long_options);
  s.ids.select(1, 0).fill_(2);
  s.position = at::zeros({}, long_options);
  s.values = {at::full({}, max_length, long_options), at::full({}, ngram_size, long_options)};
  s.length = at::ones({}, long_options);
  s.unfinished = at::ones({rows}, long_options.dtype(at::kBool));
  if (rows > 1) s.unfinished[1] = false;  // a row that finished earlier
  s.token_log_probs = at::zeros({rows, kCapacity}, long_options.dtype(at::kFloat));
  return s;
}

GreedyState clone(const GreedyState& s) {
  return {s.ids.clone(),    s.position.clone(),   {s.values.max_length.clone(), s.values.no_repeat_ngram_size.clone()},
          s.length.clone(), s.unfinished.clone(), s.token_log_probs.clone()};
}

// Random logits whose best tokens are the prefix alphabet (so that bans decide the choice), EOS
// close behind, and in some rows the maximum repeated at a higher index (arg-max takes the first).
at::Tensor make_logits(std::int64_t rows, at::ScalarType dtype, const at::Device& device) {
  at::Tensor logits = at::randn({rows, kVocab}, at::TensorOptions().device(device));
  logits.narrow(1, 3, kAlphabet).add_(6.0);
  logits.select(1, 2).add_(5.0);
  logits = logits.to(dtype);
  for (std::int64_t r = 0; r < rows; r += 2) {
    const auto best = logits[r].argmax();
    logits[r][kVocab - 1 - r] = logits[r][best];
  }
  return logits;
}

std::string compare(const GreedyState& got, const GreedyState& want) {
  if (!at::equal(got.ids, want.ids)) return "ids differ";
  if (!at::equal(got.unfinished, want.unfinished)) return "finished rows differ";
  if (!at::equal(got.length, want.length)) return "length differs";
  if (!at::equal(got.position, want.position)) return "position differs";
  const double worst = (got.token_log_probs - want.token_log_probs).abs().max().item<double>();
  if (!(worst <= 1e-5)) return "token log-probs differ by " + std::to_string(worst);
  return "";
}

}  // namespace

int main() {
  if (vlm::gpu_check::no_cuda_device()) return vlm::gpu_check::kSkipped;
  at::manual_seed(0);
  const at::Device cuda(at::kCUDA, 0);
  const auto options = at::TensorOptions().device(cuda);
  int failures = 0;
  struct Settings {
    int window, min_new_tokens, ngram_size, max_length;
    bool forced;
  };
  const std::vector<Settings> settings = {
      {3, 0, 3, kCapacity, false}, {3, 5, 2, 30, true}, {3, 0, 1, 20, false}, {0, 0, 0, 12, true}, {4, 2, 3, 40, true}};
  for (const auto dtype : {at::kFloat, at::kHalf, at::kBFloat16}) {
    for (const std::int64_t rows : {1, 3, 32}) {
      for (const Settings& s : settings) {
        const GreedySelector selector(config(s.window, s.min_new_tokens, s.forced), kVocab, options);
        if (!selector.fused()) {
          std::printf("FAIL the kernel does not take the config\n");
          return 1;
        }
        GreedyState state = make_state(rows, s.max_length, s.ngram_size, cuda);
        GreedyState reference = clone(state);
        // Eager steps to the end of the sequence, then (same states on) replayed as a CUDA graph.
        std::string problem;
        int step = 0;
        for (; step < s.max_length - 1 && problem.empty(); ++step) {
          const at::Tensor logits = make_logits(rows, dtype, cuda);
          at::Tensor kernel_logits = logits.clone();
          selector.select(kernel_logits, state);
          selector.select_with_ops(logits.clone(), reference);
          problem = compare(state, reference);
        }
        const char* name = dtype == at::kFloat ? "float32" : dtype == at::kHalf ? "float16" : "bfloat16";
        const bool ok = problem.empty();
        failures += ok ? 0 : 1;
        std::printf("%s %-8s rows %2lld window %d n %d min_new %d max_length %2d forced %d: %d eager steps%s%s\n",
                    ok ? "PASS" : "FAIL", name, static_cast<long long>(rows), s.window, s.ngram_size, s.min_new_tokens,
                    s.max_length, s.forced ? 1 : 0, step, ok ? "" : ": ", problem.c_str());
      }
    }
  }

  // Graph replay: the position is advanced by the last row's block, so a replay must see the step
  // the previous one left.
  for (const std::int64_t rows : {1, 32}) {
    const GreedySelector selector(config(3, 2, true), kVocab, options);
    GreedyState state = make_state(rows, kCapacity, 3, cuda);
    GreedyState reference = clone(state);
    at::Tensor source = make_logits(rows, at::kHalf, cuda);
    at::Tensor work = source.clone();
    at::cuda::CUDAGraph graph;
    {
      const c10::cuda::CUDAStreamGuard stream(c10::cuda::getStreamFromPool());
      // The first step runs eagerly on the side stream before capture, as the decoder's graphs do.
      work.copy_(source);
      selector.select(work, state);
      selector.select_with_ops(source.clone(), reference);
      graph.capture_begin();
      work.copy_(source);
      selector.select(work, state);
      graph.capture_end();
    }
    c10::cuda::device_synchronize();
    // Capture recorded the step without running it.
    std::string problem = compare(state, reference);
    int step = 1;
    for (; step < kCapacity - 1 && problem.empty(); ++step) {
      source.copy_(make_logits(rows, at::kHalf, cuda));
      graph.replay();
      selector.select_with_ops(source.clone(), reference);
      problem = compare(state, reference);
    }
    failures += problem.empty() ? 0 : 1;
    std::printf("%s graph replay, float16, rows %2lld: %d steps%s%s\n", problem.empty() ? "PASS" : "FAIL",
                static_cast<long long>(rows), step, problem.empty() ? "" : ": ", problem.c_str());
  }

  // One batch-1 fp16 step of logits processing and choice, each way (the state runs on past its
  // end: both keep writing the same positions' worth of work).
  const GreedySelector selector(config(3, 0, true), kVocab, options);
  GreedyState state = make_state(1, kCapacity, 3, cuda);
  const at::Tensor logits = make_logits(1, at::kHalf, cuda);
  at::Tensor work = logits.clone();
  const auto rewind = [&state] { state.position.fill_(20); };
  const double fused_us = time_us([&] {
    rewind();
    selector.select(work, state);
  });
  const double ops_us = time_us([&] {
    rewind();
    selector.select_with_ops(logits, state);
  });
  const double rewind_us = time_us(rewind);
  std::printf(
      "time: batch 1 float16, %lld-token vocabulary, eager launches: kernel %.1f us, ATen ops %.1f us "
      "(each less the %.1f us position reset)\n",
      static_cast<long long>(kVocab), fused_us - rewind_us, ops_us - rewind_us, rewind_us);
  return failures == 0 ? 0 : 1;
}
