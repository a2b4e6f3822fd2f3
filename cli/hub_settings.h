#pragma once

#include "settings.h"
#include "vlm/hub/hub_options.h"

namespace vlm::cli {

// Hub options for `hf://` models: huggingface_hub's variables (HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE)
// with --cache (VLM_CACHE) and --offline on top.
hub::HubOptions hub_options(const Settings& settings);

}  // namespace vlm::cli
