#include "vlm/hub/pull.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "vlm/error.h"
#include "vlm/hub/blob_download.h"
#include "vlm/hub/cache_layout.h"
#include "vlm/hub/file_selection.h"
#include "vlm/hub/hub_transport.h"
#include "vlm/hub/repo_metadata.h"
#include "vlm/logging.h"

namespace vlm::hub {
namespace fs = std::filesystem;
namespace {

std::vector<fs::path> cache_roots(const HubOptions& options) {
  std::vector<fs::path> roots = {options.cache_dir};
  for (const fs::path& extra : options.extra_cache_dirs) {
    if (std::find(roots.begin(), roots.end(), extra) == roots.end()) roots.push_back(extra);
  }
  return roots;
}

std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(dir, error); !error && it != fs::recursive_directory_iterator();
       it.increment(error)) {
    if (!it->is_directory(error))
      files.push_back(it->path().lexically_relative(dir).generic_string());  // not relative(): it follows the symlink
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIo, "cannot read " + path.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A complete snapshot of `spec` in one of the caches, without the network; nullopt when none.
std::optional<PullResult> find_cached(const RepoSpec& spec, const HubOptions& options) {
  for (const fs::path& root : cache_roots(options)) {
    RepoCache cache(root, spec.repo_id);
    std::optional<std::string> commit =
        is_commit_hash(spec.revision) ? std::optional(spec.revision) : cache.read_ref(spec.revision);
    if (!commit) continue;
    fs::path dir = cache.snapshot_dir(*commit);
    if (!snapshot_is_complete(dir)) continue;
    return PullResult{dir, *commit, files_under(dir), 0, true};
  }
  return std::nullopt;
}

std::string searched(const HubOptions& options) {
  std::string listed;
  for (const fs::path& root : cache_roots(options)) listed += (listed.empty() ? "" : ", ") + root.string();
  return listed;
}

// The files a selection needs, shards included once the index is readable in `dir`.
bool has_all_files(const fs::path& dir, const FileSelection& selection) {
  std::error_code error;
  for (const std::string& file : selection.files) {
    if (!fs::exists(dir / file, error)) return false;
  }
  if (selection.shard_index.empty()) return true;
  try {
    for (const std::string& shard : shards_from_index(read_file(dir / selection.shard_index), selection.shard_index)) {
      if (!fs::exists(dir / shard, error)) return false;
    }
  } catch (const Error&) {
    return false;
  }
  return true;
}

class SnapshotFetcher {
 public:
  SnapshotFetcher(const RepoSpec& spec, const HubOptions& options, const RepoRevision& revision)
      : spec_(spec),
        options_(options),
        revision_(revision),
        transport_(options),
        cache_(options.cache_dir, spec.repo_id) {}

  std::uint64_t fetch(const std::string& path) {
    const RepoFile* listed = revision_.find(path);
    if (listed == nullptr) {
      throw Error(ErrorCode::kBadCheckpoint, spec_.to_string() + " at " + revision_.commit + " has no file '" + path +
                                                 "' although its index refers to it");
    }
    RepoFile file = *listed;
    std::string url = resolve_url(options_.endpoint, spec_, revision_.commit, file.path);
    if (file.blob_id.empty() && file.sha256.empty()) fill_metadata_from_head(transport_, url, file);
    std::uint64_t bytes = ensure_blob(transport_, cache_, file, url, options_);
    cache_.link_snapshot_file(revision_.commit, file.path, file.cache_blob_id());
    return bytes;
  }

  const RepoCache& cache() const { return cache_; }

 private:
  const RepoSpec& spec_;
  const HubOptions& options_;
  const RepoRevision& revision_;
  HubTransport transport_;
  RepoCache cache_;
};

}  // namespace

PullResult pull(const RepoSpec& spec, const HubOptions& options) {
  if (options.offline) {
    if (std::optional<PullResult> cached = find_cached(spec, options)) return *cached;
    throw Error(ErrorCode::kNotFound,
                spec.to_string() + " is not in the cache (searched " + searched(options) +
                    ") and offline mode (--offline / HF_HUB_OFFLINE=1) forbids downloading it; run "
                    "`vlmserve pull " +
                    spec.to_string() + "` once with network access");
  }

  // A commit never changes: once its snapshot is complete there is nothing to ask the hub.
  if (is_commit_hash(spec.revision)) {
    if (std::optional<PullResult> cached = find_cached(spec, options)) return *cached;
  }

  HubTransport transport(options);
  RepoRevision revision;
  for (int attempt = 0;; ++attempt) {
    try {
      revision = fetch_repo_revision(transport, spec);
      break;
    } catch (const TransientError& failure) {
      // As huggingface_hub does: an unreachable hub falls back at once to what the cache holds;
      // with nothing cached, a busy or briefly unreachable hub is asked again.
      if (std::optional<PullResult> cached = find_cached(spec, options)) {
        log::warn("{}; using the cached snapshot {}", failure.what(), cached->snapshot_dir.string());
        return *cached;
      }
      if (attempt >= options.max_retries) {
        throw Error(ErrorCode::kUnavailable, std::string(failure.what()) + "; " + spec.to_string() +
                                                 " is not cached either (searched " + searched(options) + ")");
      }
      auto pause = std::chrono::milliseconds(250) * (1 << std::min(attempt, 5));
      log::warn("{}; retrying in {} ms", failure.what(), pause.count());
      std::this_thread::sleep_for(pause);
    }
  }

  std::string label = spec.to_string() + " (commit " + revision.commit + ")";
  FileSelection selection = select_model_files(revision.paths(), label);

  // A read-only cache (an existing huggingface_hub one) that already holds the snapshot is used as is.
  for (const fs::path& root : options.extra_cache_dirs) {
    fs::path dir = RepoCache(root, spec.repo_id).snapshot_dir(revision.commit);
    if (root != options.cache_dir && has_all_files(dir, selection)) {
      log::info("{} found in {}", label, root.string());
      return PullResult{dir, revision.commit, files_under(dir), 0, true};
    }
  }

  SnapshotFetcher fetcher(spec, options, revision);
  PullResult result;
  result.commit = revision.commit;
  for (const std::string& path : selection.files) result.bytes_downloaded += fetcher.fetch(path);
  result.snapshot_dir = fetcher.cache().snapshot_dir(revision.commit);
  if (!selection.shard_index.empty()) {
    std::string index = read_file(result.snapshot_dir / selection.shard_index);
    for (const std::string& shard : shards_from_index(index, selection.shard_index)) {
      result.bytes_downloaded += fetcher.fetch(shard);
    }
  }
  if (spec.revision != revision.commit) fetcher.cache().write_ref(spec.revision, revision.commit);
  result.files = files_under(result.snapshot_dir);
  result.from_cache = result.bytes_downloaded == 0;
  return result;
}

}  // namespace vlm::hub
