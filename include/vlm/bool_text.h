#pragma once

#include <optional>
#include <string_view>

namespace vlm {

// The one reading of a boolean written as text, for flags, VLM_* variables, config files, request
// parameters and HF_HUB_OFFLINE alike: true, 1, yes, on / false, 0, no, off, in any case, surrounding
// spaces ignored (huggingface_hub reads its variables the same way). Anything else: nullopt.
std::optional<bool> parse_bool_text(std::string_view text);

}  // namespace vlm
