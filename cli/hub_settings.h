#pragma once

#include "settings.h"
#include "vlm/hub/hub_options.h"

namespace vlm::cli {

// Hub options for `hf://` models: the environment (HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE, VLM_CACHE)
// overridden by --cache and --offline.
hub::HubOptions hub_options(const Settings& settings);

}  // namespace vlm::cli
