#pragma once

#include "server_config.h"

namespace vlm::server {

// Runs `vlmserve serve` until SIGINT/SIGTERM: binds, answers /health at once, loads models in the
// background, then drains in-flight requests (bounded) and returns the exit status (0 after a
// clean shutdown). Throws vlm::Error for configuration or bind failures.
int serve(const ServerConfig& config);

}  // namespace vlm::server
