#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vlm/hub/hub_transport.h"
#include "vlm/hub/repo_spec.h"

namespace vlm::hub {

struct RepoFile {
  std::string path;  // relative to the repository root
  std::uint64_t size = 0;
  std::string blob_id;  // git blob id (SHA-1) of the file, or of its LFS pointer
  std::string sha256;   // LFS files only: SHA-256 of the content

  // The name the blob gets in the cache, as huggingface_hub names it (its normalised ETag).
  const std::string& cache_blob_id() const { return sha256.empty() ? blob_id : sha256; }
};

struct RepoRevision {
  std::string commit;
  std::vector<RepoFile> files;

  const RepoFile* find(std::string_view path) const;
  std::vector<std::string> paths() const;
};

// GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true: the commit and, per file, its
// size, blob id and LFS SHA-256.
RepoRevision fetch_repo_revision(const HubTransport& transport, const RepoSpec& spec);
// Throws vlm::Error kInvalidArgument naming the field when the document is not what the hub sends.
RepoRevision parse_repo_revision(std::string_view json, std::string_view what);
// For a mirror whose revision document lacks blob metadata: a HEAD on the file's resolve URL gives
// X-Linked-Etag / X-Linked-Size (LFS) or ETag / Content-Length (git), as huggingface_hub reads them.
void fill_metadata_from_head(const HubTransport& transport, const std::string& url, RepoFile& file);
// An ETag as the hub sends it ("W/\"abc\"") reduced to the bare hash.
std::string normalize_etag(std::string_view etag);

// Percent-encodes a path segment; keeps '/' when `keep_slash` (file paths inside a repository).
std::string url_quote(std::string_view text, bool keep_slash);
std::string resolve_url(std::string_view endpoint, const RepoSpec& spec, std::string_view commit,
                        std::string_view repo_path);

}  // namespace vlm::hub
