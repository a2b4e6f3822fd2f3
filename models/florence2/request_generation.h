#pragma once

#include "config.h"
#include "vlm/model.h"

namespace vlm::florence2 {

// One request's generation settings: the checkpoint's generation_config.json with the request's
// DetectOptions overrides (num_beams, max_new_tokens, no_repeat_ngram_size, length_penalty,
// early_stopping), as transformers' generate(**kwargs) applies them over the model's generation
// config.
GenerationConfig request_generation(const GenerationConfig& checkpoint, const DetectOptions& options);

// The decoder length to stop at (transformers' max_length, start token included): the settings'
// max_new_tokens or max_length, else `default_new_tokens`, capped at 1 + `max_new_tokens_limit`.
int request_max_length(const GenerationConfig& generation, int default_new_tokens, int max_new_tokens_limit);

// Throws kInvalidArgument when the request asks for more new tokens than `max_new_tokens_limit`.
void check_generation_options(const DetectOptions& options, int max_new_tokens_limit);

}  // namespace vlm::florence2
