#pragma once

#include <cstdint>
#include <string>

#include "vlm/hub/cache_layout.h"
#include "vlm/hub/hub_options.h"
#include "vlm/hub/hub_transport.h"
#include "vlm/hub/repo_metadata.h"

namespace vlm::hub {

// Makes blobs/<id> hold `file`, verified: under the blob's lock, resuming a `<id>.incomplete` left
// by an interrupted transfer (Range), hashing as it writes, and renaming into place only when size
// and hash match the hub's metadata. A mismatch deletes the partial file and throws kBadCheckpoint;
// a full disk throws kIo. Returns the bytes transferred (0 when the blob was already there).
std::uint64_t ensure_blob(const HubTransport& transport, const RepoCache& cache, const RepoFile& file,
                          const std::string& url, const HubOptions& options);

}  // namespace vlm::hub
