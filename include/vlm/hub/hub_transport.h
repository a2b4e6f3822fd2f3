#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "vlm/hub/http_client.h"
#include "vlm/hub/hub_options.h"

namespace vlm::hub {

// Hub requests: the token, redirects (the token never follows one to another origin, as the hub
// sends LFS downloads to a CDN), and hub error statuses turned into messages a user can act on.
class HubTransport {
 public:
  explicit HubTransport(const HubOptions& options);

  // GET with redirects followed; statuses >= 400 throw (see throw_for_status).
  HttpResponse get(const std::string& url, std::string_view what) const;
  // HEAD of a file URL, stopping at the first redirect to another origin: the hub's own answer
  // carries X-Linked-Etag / X-Linked-Size / X-Repo-Commit, the CDN's does not.
  HttpResponse head(const std::string& url, std::string_view what) const;
  // Streams a file; `offset` > 0 asks for the rest from there (Range). `accept` sees the final
  // response's status and headers, `sink` its body. Returns the headers of the hub's first answer
  // (for the X-Linked-* metadata) with the final status; 416 is returned, not thrown.
  HttpResponse download(const std::string& url, std::uint64_t offset, std::string_view what,
                        const std::function<bool(const HttpResponse&)>& accept,
                        const std::function<bool(const char*, std::size_t)>& sink) const;

  const std::string& endpoint() const { return endpoint_; }

 private:
  std::vector<std::pair<std::string, std::string>> headers_for(const Url& url) const;

  HttpClient client_;
  std::string endpoint_;
  Url endpoint_url_;
  std::string token_;
};

// Maps a hub error status to vlm::Error: 401/403 (missing, private or gated: set HF_TOKEN), 404
// (repository, revision or file), 416, 429 and 5xx, quoting the hub's X-Error-Message.
[[noreturn]] void throw_for_status(const HttpResponse& response, std::string_view what, bool has_token);

// A hub status worth retrying after a pause (rate limit, server errors).
bool is_retryable_status(int status);

}  // namespace vlm::hub
