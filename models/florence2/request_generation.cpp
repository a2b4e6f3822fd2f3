#include "request_generation.h"

#include <algorithm>
#include <string>

#include "vlm/error.h"

namespace vlm::florence2 {

GenerationConfig request_generation(const GenerationConfig& checkpoint, const DetectOptions& options) {
  GenerationConfig g = checkpoint;
  if (options.num_beams) g.num_beams = *options.num_beams;
  // generate(max_new_tokens=...) wins over the config's max_length, as it does in transformers.
  if (options.max_new_tokens) g.max_new_tokens = *options.max_new_tokens;
  if (options.no_repeat_ngram_size) g.no_repeat_ngram_size = *options.no_repeat_ngram_size;
  if (options.length_penalty) g.length_penalty = *options.length_penalty;
  if (options.early_stopping) g.early_stopping = *options.early_stopping;
  return g;
}

int request_max_length(const GenerationConfig& generation, int default_new_tokens, int max_new_tokens_limit) {
  return std::min(generation.resolved_max_length(default_new_tokens), 1 + max_new_tokens_limit);
}

void check_generation_options(const DetectOptions& options, int max_new_tokens_limit) {
  if (options.max_new_tokens && *options.max_new_tokens > max_new_tokens_limit) {
    throw Error(ErrorCode::kInvalidArgument, "max_new_tokens must be at most " + std::to_string(max_new_tokens_limit) +
                                                 " (this server's --max-new-tokens-limit), got " +
                                                 std::to_string(*options.max_new_tokens));
  }
}

}  // namespace vlm::florence2
