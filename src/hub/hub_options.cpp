#include "vlm/hub/hub_options.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

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

bool env_flag_is_true(const char* value) {
  if (value == nullptr) return false;
  std::string lowered(value);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  lowered = trim(lowered);
  return lowered == "1" || lowered == "true" || lowered == "yes" || lowered == "on";
}

HubOptions hub_options_from_env() {
  HubOptions options;
  if (std::string endpoint = env("HF_ENDPOINT"); !endpoint.empty()) {
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    options.endpoint = endpoint;
  }
  options.token = trim(env("HF_TOKEN"));
  if (options.token.empty()) options.token = stored_token();

  std::string cache = env("VLM_CACHE");
  options.cache_dir = cache.empty() ? xdg_cache_dir() / "vlmserve" : std::filesystem::path(cache);

  std::string hf_cache = env("HF_HUB_CACHE");
  std::filesystem::path hf_cache_dir = hf_cache.empty() ? hf_home() / "hub" : std::filesystem::path(hf_cache);
  if (hf_cache_dir != options.cache_dir) options.extra_cache_dirs.push_back(hf_cache_dir);

  options.offline = env_flag_is_true(std::getenv("HF_HUB_OFFLINE"));
  return options;
}

}  // namespace vlm::hub
