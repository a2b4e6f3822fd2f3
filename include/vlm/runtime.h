#pragma once

#include <string_view>

// Process-wide runtime settings, reachable without torch headers (for CLI and server code).
namespace vlm {

void set_cpu_threads(int threads);
// Parses auto|flash|eager|sdpa (throws kInvalidArgument) and makes it the default backend.
void set_default_attention_backend_by_name(std::string_view name);

}  // namespace vlm
