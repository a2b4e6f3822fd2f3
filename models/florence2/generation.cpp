#include "generation.h"

#include "logits_processor.h"
#include "search.h"
#include "vlm/error.h"

namespace vlm::florence2 {
namespace {

// Steps between the host's reads of the "still running" flag: a read waits for the device, so
// reading every step would serialise the host and the GPU; a few wasted steps at the end cost less.
constexpr int kCheckEvery = 8;

}  // namespace

void process_logits(const at::Tensor& ids, at::Tensor& scores, const GenerationConfig& config, int max_length) {
  const LogitsProcessor processor(config, max_length, scores.size(1), scores.options());
  const at::Tensor cur_len = at::full({}, ids.size(1), ids.options().dtype(at::kLong));
  processor.apply(ids.to(scores.device(), at::kLong), cur_len.to(scores.device()), scores);
}

at::Tensor run_search(Search& search, const at::Tensor& encoder_hidden, BeamTrace* trace) {
  const int max_length = search.shape().max_length;
  search.reset(encoder_hidden);
  // With a trace every step is recorded, so the flag is read every step and no step runs past the end.
  const int check_every = trace != nullptr ? 1 : kCheckEvery;
  for (int cur_len = 1; cur_len < max_length;) {
    if (trace != nullptr) trace->running.push_back(search.prefixes(cur_len));
    search.step();
    ++cur_len;
    if (cur_len % check_every == 0 && cur_len < max_length && !search.running().item<bool>()) break;
  }
  return search.result();
}

at::Tensor generate(const BartDecoder& decoder, const at::Tensor& encoder_hidden, const GenerationConfig& config,
                    int max_length, BeamTrace* trace) {
  if (max_length < 2) {
    throw Error(ErrorCode::kInvalidArgument, "max_length " + std::to_string(max_length) +
                                                 " leaves no room to generate after the decoder start token");
  }
  const DecodeShape shape{encoder_hidden.size(0), std::max(1, config.num_beams), encoder_hidden.size(1), max_length};
  const auto search = make_search(decoder, config, shape, encoder_hidden.options());
  return run_search(*search, encoder_hidden, trace);
}

}  // namespace vlm::florence2
