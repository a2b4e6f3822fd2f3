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
  std::filesystem::path cache_dir;                  // VLM_CACHE, default ~/.cache/vlmserve
  // Caches searched read-only after cache_dir, so models an existing huggingface_hub cache already
  // holds are used in place instead of fetched again.
  std::vector<std::filesystem::path> extra_cache_dirs;
  bool offline = false;  // --offline / HF_HUB_OFFLINE=1: never open a connection
  int max_retries = 3;   // transport failures retried, resuming from the bytes already on disk
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds read_timeout{60};
};

// Options from VLM_CACHE, HF_ENDPOINT, HF_TOKEN (else the token file `hf auth login` writes),
// HF_HUB_OFFLINE and HF_HUB_CACHE / HF_HOME (the read-only huggingface_hub cache).
HubOptions hub_options_from_env();

// huggingface_hub's reading of a boolean environment variable ("1", "true", "yes", "on").
bool env_flag_is_true(const char* value);

}  // namespace vlm::hub
