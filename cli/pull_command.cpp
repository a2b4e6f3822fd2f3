// `vlmserve pull hf://ORG/REPO[@REVISION]...`: fetches what the loaders need into the cache and
// prints each snapshot folder, so `--model $(vlmserve pull hf://...)` and offline starts work.
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "command.h"
#include "common.h"
#include "hub_settings.h"
#include "vlm/error.h"
#include "vlm/hub/pull.h"
#include "vlm/hub/repo_spec.h"
#include "vlm/logging.h"

namespace vlm::cli {
namespace {

struct PullState {
  Settings settings{"pull"};
  std::vector<std::string> specs;
};

int run_pull(PullState& state) {
  try {
    state.settings.resolve();
    apply_process_settings(state.settings);
    hub::HubOptions options = hub_options(state.settings);
    // Every spec is checked before the first download starts.
    std::vector<hub::RepoSpec> repos;
    for (const std::string& spec : state.specs) repos.push_back(hub::parse_repo_spec(spec));
    for (const hub::RepoSpec& repo : repos) {
      hub::PullResult pulled = hub::pull(repo, options);
      log::info("{}: commit {}, {} files, {} bytes downloaded{}", repo.to_string(), pulled.commit, pulled.files.size(),
                pulled.bytes_downloaded, pulled.from_cache ? " (all cached)" : "");
      std::cout << pulled.snapshot_dir.string() << '\n' << std::flush;
    }
    return kExitOk;
  } catch (const std::exception& e) {
    // Scripts tell a failure worth retrying later (network) from one that needs a different command.
    return report_fatal(e);
  }
}

}  // namespace

Subcommand add_pull_command(CLI::App& root) {
  auto state = std::make_shared<PullState>();
  CLI::App* app = root.add_subcommand("pull", "Download models from the Hugging Face hub into the local cache");
  app->add_option("models", state->specs, "hf://ORG/REPO or hf://ORG/REPO@REVISION (branch, tag or commit)")
      ->required();
  state->settings.register_flags(*app);
  app->footer(
      "Fetches only what vlmserve loads (config, generation/preprocessor config, tokenizer, weights; or a YOLO "
      "*.torchscript), verified against the hub's SHA-256, into $VLM_CACHE (default ~/.cache/vlmserve) in "
      "huggingface_hub's layout, and prints each snapshot folder. HF_TOKEN for gated or private repos, HF_ENDPOINT "
      "for a mirror, HF_HUB_OFFLINE=1 or --offline to use the cache only. Interrupted downloads resume. Exit "
      "status: 0 all pulled, 1 a local failure (disk, cache, a download failing verification, nothing loadable), 2 "
      "bad usage, 3 network failure (hub unreachable, timed out, busy, or refusing access), 4 not found "
      "(repository, revision or file; or, offline, not cached).");
  return {app, [state] { return run_pull(*state); }};
}

}  // namespace vlm::cli
