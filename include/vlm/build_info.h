#pragma once

#include <nlohmann/json.hpp>

namespace vlm {

// What this binary was built with and what it can use here: version, libtorch, CUDA (compiled and
// present), attention backends. Printed by --version and served by the server.
nlohmann::json build_info();

}  // namespace vlm
