#include "vlm/hub/hub_options.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "vlm/bool_text.h"

namespace vlm::hub {
namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

std::filesystem::path home_dir() {
  std::string home = env("HOME");
  return home.empty() ? std::filesystem::path("/tmp") : std::filesystem::path(home);
}

std::filesystem::path xdg_cache_dir() {
  std::string xdg = env("XDG_CACHE_HOME");
  return xdg.empty() ? home_dir() / ".cache" : std::filesystem::path(xdg);
}

std::filesystem::path hf_home() {
  std::string value = env("HF_HOME");
  return value.empty() ? xdg_cache_dir() / "huggingface" : std::filesystem::path(value);
}

std::string trim(std::string text) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  text.erase(text.begin(), std::find_if(text.begin(), text.end(), not_space));
  text.erase(std::find_if(text.rbegin(), text.rend(), not_space).base(), text.end());
  return text;
}

// The token `hf auth login` stored, so a logged-in user needs no HF_TOKEN.
std::string stored_token() {
  std::string path = env("HF_TOKEN_PATH");
  std::ifstream in(path.empty() ? hf_home() / "token" : std::filesystem::path(path));
  if (!in) return {};
  std::stringstream text;
  text << in.rdbuf();
  return trim(text.str());
}

}  // namespace

HubOptions hub_options_from_env() {
  HubOptions options;
  if (std::string endpoint = env("HF_ENDPOINT"); !endpoint.empty()) {
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    options.endpoint = endpoint;
  }
  options.token = trim(env("HF_TOKEN"));
  if (options.token.empty()) options.token = stored_token();

  // VLM_CACHE is an option of the CLI's table (--cache); callers override this default with it.
  options.cache_dir = xdg_cache_dir() / "vlmserve";

  std::string hf_cache = env("HF_HUB_CACHE");
  std::filesystem::path hf_cache_dir = hf_cache.empty() ? hf_home() / "hub" : std::filesystem::path(hf_cache);
  if (hf_cache_dir != options.cache_dir) options.extra_cache_dirs.push_back(hf_cache_dir);

  // Anything but a true word leaves the network on, as huggingface_hub does.
  options.offline = parse_bool_text(env("HF_HUB_OFFLINE")).value_or(false);
  return options;
}

}  // namespace vlm::hub
