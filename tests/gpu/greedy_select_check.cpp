// Florence-2's greedy step kernel (GreedySelector::select on CUDA) against the ATen ops it replaces
// (GreedySelector::select_with_ops on the same device), step after step, eagerly and replayed as a
// CUDA graph: float32, float16 and bfloat16 logits; 1, 3, 32, 96 and 600 rows (the last split into
// one block a row); prefixes drawn from a small alphabet so that n-grams repeat and bans fall on the
// best tokens; arg-max ties; finished rows; min_new_tokens; forced BOS and EOS; no_repeat_ngram_size
// 0 to 3. Then single steps built around the kernel's split of a row into chunks: ties, NaN and inf
// in different chunks, n-gram and EOS bans in late chunks, rows of -inf. The chosen ids, finished
// rows, returned length and position must be identical; token log-probabilities within 1e-5 (the
// two sum the softmax in different orders; NaN where both are NaN). Then both are timed on fp16
// steps of Florence-2's vocabulary at batch 1, 32 and 96. Exits 77 (ctest: skipped) where no CUDA
// device is visible.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "gpu_check.h"
#include "greedy_select.h"

namespace {

using vlm::florence2::GenerationConfig;
using vlm::florence2::GreedySelector;
using vlm::florence2::GreedySplit;
using vlm::florence2::GreedyState;
using vlm::gpu_check::time_us;

constexpr std::int64_t kVocab = 51289;  // Florence-2's
constexpr std::int64_t kCapacity = 48;
constexpr std::int64_t kAlphabet = 6;  // prefix tokens 3..8: n-grams repeat within a few steps

GenerationConfig config(int ngram_window, int min_new_tokens, bool forced, int eos = 2) {
  GenerationConfig c;
  c.no_repeat_ngram_size = ngram_window;
  c.min_new_tokens = min_new_tokens;
  if (forced) {
    c.forced_bos_token_id = 0;
    c.forced_eos_token_id = 2;
  }
  c.eos_token_ids = {eos};
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
  // Rows whose maximum is infinite or NaN have NaN log-probabilities both ways.
  const at::Tensor close = at::isclose(got.token_log_probs, want.token_log_probs, /*rtol=*/0.0, /*atol=*/1e-5,
                                       /*equal_nan=*/true);
  if (!close.all().item<bool>()) {
    const at::Tensor wrong = close.logical_not().nonzero()[0];
    return "token log-probs differ: row " + std::to_string(wrong[0].item<std::int64_t>()) + " column " +
           std::to_string(wrong[1].item<std::int64_t>()) + ": " +
           std::to_string(got.token_log_probs[wrong[0]][wrong[1]].item<float>()) + " vs " +
           std::to_string(want.token_log_probs[wrong[0]][wrong[1]].item<float>());
  }
  return "";
}

const char* dtype_name(at::ScalarType dtype) {
  return dtype == at::kFloat ? "float32" : dtype == at::kHalf ? "float16" : "bfloat16";
}

// One step at `position` from prefixes `ids` (undefined: make_state's) on float32 `logits`
// converted to `dtype`, every row running, the kernel against the reference; then each row's
// token against `expected` (-1: whatever the reference chose), so that a case that stopped testing
// what it says fails rather than passes.
struct Edge {
  std::string name;
  GenerationConfig config;
  int position = 0;
  int ngram_size = 0;
  at::Tensor ids;
  at::Tensor logits;
  std::vector<std::int64_t> expected;
};

std::string run_edge(const Edge& e, std::int64_t selector_rows, at::ScalarType dtype, const at::Device& cuda) {
  const auto rows = e.logits.size(0);
  const GreedySelector selector(e.config, kVocab, selector_rows, at::TensorOptions().device(cuda));
  if (!selector.fused()) return "the kernel does not take the config";
  GreedyState state = make_state(rows, kCapacity, e.ngram_size, cuda);
  state.unfinished.fill_(true);
  state.position.fill_(e.position);
  if (e.ids.defined()) state.ids.copy_(e.ids);
  GreedyState reference = clone(state);
  const at::Tensor logits = e.logits.to(dtype);
  selector.select(logits.clone(), state);
  selector.select_with_ops(logits.clone(), reference);
  std::string problem = compare(state, reference);
  if (!problem.empty()) return problem;
  const at::Tensor chosen = state.ids.select(1, e.position + 1).cpu();
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto want = e.expected[static_cast<std::size_t>(r)];
    const auto got = chosen[r].item<std::int64_t>();
    if (want >= 0 && got != want) {
      return "row " + std::to_string(r) + " chose " + std::to_string(got) + ", the case expects " +
             std::to_string(want) + " (the reference agrees with the kernel: the case is wrong)";
    }
  }
  return "";
}

// Cases around the split of a row into chunks of `split`: each puts what matters in chunks other
// than the first, or across a chunk boundary.
std::vector<Edge> edge_cases(const GreedySplit& split, const at::Device& cuda) {
  constexpr std::int64_t kRows = 4;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
  const int last = split.blocks - 1;
  // The entry `offset` into chunk `b` (clamped into the row's chunks and into the chunk).
  const auto at_chunk = [&](int b, std::int64_t offset) {
    b = std::clamp(b, 0, last);
    const std::int64_t begin = std::int64_t{b} * split.chunk;
    const std::int64_t end = std::min<std::int64_t>(begin + split.chunk, kVocab);
    return std::min(begin + offset, end - 1);
  };
  const auto randn = [&] { return at::randn({kRows, kVocab}, at::TensorOptions().device(cuda)); };
  std::vector<Edge> cases;

  {
    Edge e{"ties across chunks", config(0, 0, false), 3, 0, {}, randn(), {}};
    const std::int64_t boundary = at_chunk(2, 0);
    const std::vector<std::vector<std::int64_t>> ties = {{at_chunk(last, 5), at_chunk(1, 7)},
                                                         {boundary, boundary - 1},
                                                         {at_chunk(2, 11), at_chunk(2, 10)},
                                                         {kVocab - 1, 0}};
    for (std::int64_t r = 0; r < kRows; ++r) {
      for (const auto i : ties[r]) e.logits[r][i] = 8.0F;
      e.expected.push_back(*std::min_element(ties[r].begin(), ties[r].end()));
    }
    cases.push_back(e);
  }
  {
    // NaN beats everything, the first NaN the others; +inf beats finite values.
    Edge e{"NaN and +inf in late chunks", config(0, 0, false), 3, 0, {}, randn(), {}};
    e.logits[0][at_chunk(0, 2)] = 50.0F;
    e.logits[0][at_chunk(last, 3)] = kNan;
    e.logits[1][at_chunk(last, 9)] = kNan;
    e.logits[1][at_chunk(last - 1, 4)] = kNan;
    e.logits[2][at_chunk(last, 1)] = kInf;
    e.logits[2][at_chunk(3, 2)] = kInf;
    e.logits[3][at_chunk(1, 1)] = kInf;
    e.logits[3][at_chunk(last, 2)] = kNan;
    e.expected = {at_chunk(last, 3), std::min(at_chunk(last, 9), at_chunk(last - 1, 4)),
                  std::min(at_chunk(last, 1), at_chunk(3, 2)), at_chunk(last, 2)};
    cases.push_back(e);
  }
  {
    // All -inf (token 0, NaN log-probability); -inf but the last chunk; -inf but one 0 (log-prob 0);
    // finite but far below 0 (the maximum taken out of every chunk's sum).
    Edge e{"rows of -inf", config(0, 0, false), 3, 0, {}, randn(), {}};
    e.logits[0].fill_(-kInf);
    const std::int64_t tail_begin = at_chunk(last, 0);
    e.logits[1].narrow(0, 0, tail_begin).fill_(-kInf);
    e.logits[2].fill_(-kInf);
    e.logits[2][at_chunk(last / 2, 17)] = 0.0F;
    e.logits[3].sub_(200.0F);
    e.expected = {0, -1, at_chunk(last / 2, 17), -1};
    cases.push_back(e);
  }
  {
    // n 2: the last token A followed, earlier, by B and by D: both banned, in two chunks; C next.
    Edge e{"n-gram bans (n 2) in late chunks", config(3, 0, false), 7, 2, {}, randn(), {}};
    e.ids = at::full({kRows, kCapacity}, 1, at::TensorOptions().dtype(at::kLong));
    for (std::int64_t r = 0; r < kRows; ++r) {
      const std::int64_t a = at_chunk(last, 20 + r), b = at_chunk(last / 2, 30 + r), c = at_chunk(last - 1, 40 + r);
      const std::int64_t d = at_chunk(last, 70 + r), x = at_chunk(3, 50);
      const std::vector<std::int64_t> prefix = {2, a, b, a, d, x, 3, a};
      for (std::size_t j = 0; j < prefix.size(); ++j) e.ids[r][static_cast<std::int64_t>(j)] = prefix[j];
      e.logits[r][b] = 9.0F;
      e.logits[r][d] = 8.5F;
      e.logits[r][c] = 8.0F;
      e.expected.push_back(c);
    }
    e.ids = e.ids.to(cuda);
    cases.push_back(e);
  }
  {
    // n 3: (X, A) ends the prefix and came before, followed by B.
    Edge e{"n-gram ban (n 3) in a late chunk", config(3, 0, false), 7, 3, {}, randn(), {}};
    e.ids = at::full({kRows, kCapacity}, 1, at::TensorOptions().dtype(at::kLong));
    for (std::int64_t r = 0; r < kRows; ++r) {
      const std::int64_t a = at_chunk(last, 20 + r), b = at_chunk(last / 2, 30 + r), c = at_chunk(last - 1, 40 + r);
      const std::int64_t x = at_chunk(3, 50);
      const std::vector<std::int64_t> prefix = {2, x, a, b, 3, 4, x, a};
      for (std::size_t j = 0; j < prefix.size(); ++j) e.ids[r][static_cast<std::int64_t>(j)] = prefix[j];
      e.logits[r][b] = 9.0F;
      e.logits[r][c] = 8.0F;
      e.expected.push_back(c);
    }
    e.ids = e.ids.to(cuda);
    cases.push_back(e);
  }
  {
    // min_new_tokens 5: an EOS in the last chunk banned at cur_len 3, chosen (ending the rows) at 7.
    const auto eos = static_cast<int>(at_chunk(last, 60));
    const std::int64_t c = at_chunk(last - 2, 5);
    for (const int position : {2, 6}) {
      Edge e{position == 2 ? "EOS banned in a late chunk" : "EOS no longer banned",
             config(0, 5, false, eos),
             position,
             0,
             {},
             randn(),
             {}};
      e.logits.select(1, eos).fill_(9.0F);
      e.logits.select(1, c).fill_(8.0F);
      e.expected.assign(kRows, position == 2 ? c : eos);
      cases.push_back(e);
    }
  }
  return cases;
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
    for (const std::int64_t rows : {1, 3, 32, 96}) {
      for (const Settings& s : settings) {
        const GreedySelector selector(config(s.window, s.min_new_tokens, s.forced), kVocab, rows, options);
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
        const bool ok = problem.empty();
        failures += ok ? 0 : 1;
        std::printf(
            "%s %-8s rows %2lld (%2d blocks a row) window %d n %d min_new %d max_length %2d forced %d: %d eager "
            "steps%s%s\n",
            ok ? "PASS" : "FAIL", dtype_name(dtype), static_cast<long long>(rows), selector.split().blocks, s.window,
            s.ngram_size, s.min_new_tokens, s.max_length, s.forced ? 1 : 0, step, ok ? "" : ": ", problem.c_str());
      }
    }
  }

  // More rows than the grid aims for blocks: one block a row.
  {
    constexpr std::int64_t kManyRows = 600;
    const GreedySelector selector(config(3, 2, true), kVocab, kManyRows, options);
    GreedyState state = make_state(kManyRows, 14, 2, cuda);
    GreedyState reference = clone(state);
    std::string problem;
    int step = 0;
    for (; step < 13 && problem.empty(); ++step) {
      const at::Tensor logits = make_logits(kManyRows, at::kHalf, cuda);
      selector.select(logits.clone(), state);
      selector.select_with_ops(logits.clone(), reference);
      problem = compare(state, reference);
    }
    failures += problem.empty() ? 0 : 1;
    std::printf("%s float16  rows %lld (%d blocks a row): %d eager steps%s%s\n", problem.empty() ? "PASS" : "FAIL",
                static_cast<long long>(kManyRows), selector.split().blocks, step, problem.empty() ? "" : ": ",
                problem.c_str());
  }

  // Single steps around the chunks; the selector is built for more rows than it is given.
  {
    constexpr std::int64_t kSelectorRows = 8;
    const GreedySplit split = GreedySelector(config(0, 0, false), kVocab, kSelectorRows, options).split();
    std::printf("edge cases: %d blocks a row of %d entries\n", split.blocks, split.chunk);
    for (const auto dtype : {at::kFloat, at::kHalf, at::kBFloat16}) {
      for (const Edge& e : edge_cases(split, cuda)) {
        const std::string problem = run_edge(e, kSelectorRows, dtype, cuda);
        failures += problem.empty() ? 0 : 1;
        std::printf("%s %-8s %s%s%s\n", problem.empty() ? "PASS" : "FAIL", dtype_name(dtype), e.name.c_str(),
                    problem.empty() ? "" : ": ", problem.c_str());
      }
    }
  }

  // Graph replay: the position is advanced by the last row's last block, and the counters are left
  // at 0 by the kernel, so each replay must see the step the previous one left.
  for (const std::int64_t rows : {1, 32, 96}) {
    const GreedySelector selector(config(3, 2, true), kVocab, rows, options);
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

  // One fp16 step of logits processing and choice, each way (the state runs on past its end: both
  // keep writing the same positions' worth of work).
  for (const std::int64_t rows : {1, 32, 96}) {
    const GreedySelector selector(config(3, 0, true), kVocab, rows, options);
    GreedyState state = make_state(rows, kCapacity, 3, cuda);
    const at::Tensor logits = make_logits(rows, at::kHalf, cuda);
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
        "time: batch %2lld float16, %lld-token vocabulary, eager launches: kernel (%d blocks a row) %.1f us, ATen "
        "ops %.1f us (each less the %.1f us position reset)\n",
        static_cast<long long>(rows), static_cast<long long>(kVocab), selector.split().blocks, fused_us - rewind_us,
        ops_us - rewind_us, rewind_us);
  }
  // The kernel as a decode step's graph runs it: kGraphSteps (reset, step) pairs a replay, less a
  // graph of the resets alone; what is left is the kernel and its gap in a graph.
  constexpr int kGraphSteps = 20;
  for (const std::int64_t rows : {1, 32, 96}) {
    const GreedySelector selector(config(3, 0, true), kVocab, rows, options);
    GreedyState state = make_state(rows, kCapacity, 3, cuda);
    at::Tensor work = make_logits(rows, at::kHalf, cuda);
    const auto graph_us = [&](bool select) {
      at::cuda::CUDAGraph graph;
      {
        const c10::cuda::CUDAStreamGuard stream(c10::cuda::getStreamFromPool());
        state.position.fill_(20);
        selector.select(work, state);
        graph.capture_begin();
        for (int i = 0; i < kGraphSteps; ++i) {
          state.position.fill_(20);
          if (select) selector.select(work, state);
        }
        graph.capture_end();
      }
      return time_us([&] { graph.replay(); }) / kGraphSteps;
    };
    const double with_us = graph_us(true);
    const double without_us = graph_us(false);
    std::printf("time: batch %2lld float16, graph-replayed: kernel (%d blocks a row) %.1f us a step\n",
                static_cast<long long>(rows), selector.split().blocks, with_us - without_us);
  }
  return failures == 0 ? 0 : 1;
}
