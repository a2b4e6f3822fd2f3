#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace vlm::hub {

// How models are fetched from the Hugging Face hub, or from a mirror that speaks its protocol.
struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT
  std::string token;                                // HF_TOKEN; empty means anonymous
  std::filesystem::path cache_dir;                  // default ~/.cache/vlmserve; --cache / VLM_CACHE
  // Caches searched read-only after cache_dir, so models an existing huggingface_hub cache already
  // holds are used in place instead of fetched again.
  std::vector<std::filesystem::path> extra_cache_dirs;
  bool offline = false;  // --offline / HF_HUB_OFFLINE=1: never open a connection
  int max_retries = 3;   // transport failures retried, resuming from the bytes already on disk
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds read_timeout{60};
};

// Options from huggingface_hub's variables: HF_ENDPOINT, HF_TOKEN (else the token file `hf auth
// login` writes), HF_HUB_OFFLINE and HF_HUB_CACHE / HF_HOME (the read-only huggingface_hub cache).
// The cache folder is the default (~/.cache/vlmserve, or $XDG_CACHE_HOME/vlmserve); VLM_CACHE is the
// CLI's --cache option and is applied by the caller.
HubOptions hub_options_from_env();

}  // namespace vlm::hub
