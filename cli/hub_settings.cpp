#include "hub_settings.h"

namespace vlm::cli {

hub::HubOptions hub_options(const Settings& settings) {
  hub::HubOptions options = hub::hub_options_from_env();
  const HubSettings& given = settings.options().hub;
  if (!given.cache.empty()) options.cache_dir = given.cache;
  // --offline only ever switches the network off; HF_HUB_OFFLINE=1 cannot be undone by a default.
  if (given.offline) options.offline = true;
  return options;
}

}  // namespace vlm::cli
