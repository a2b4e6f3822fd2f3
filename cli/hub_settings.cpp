#include "hub_settings.h"

namespace vlm::cli {

hub::HubOptions hub_options(const Settings& settings) {
  hub::HubOptions options = hub::hub_options_from_env();
  if (settings.is_set("cache")) options.cache_dir = settings.get("cache");
  // --offline only ever switches the network off; HF_HUB_OFFLINE=1 cannot be undone by a default.
  if (settings.get_bool("offline")) options.offline = true;
  return options;
}

}  // namespace vlm::cli
