#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vlm/error.h"

namespace vlm::hub {

// A failure worth retrying: the connection broke, timed out, or the hub asked to come back later.
class TransientError : public Error {
 public:
  explicit TransientError(const std::string& message) : Error(ErrorCode::kUnavailable, message) {}
};

// The only door to the HTTP library (src/hub/http_client.cpp includes cpp-httplib; nothing else does).

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;
  int port = 0;
  std::string target;  // path and query, starting with '/'

  std::string origin() const;  // "https://host:port"
  std::string to_string() const;
};

// Throws vlm::Error kInvalidArgument for anything but an absolute http(s) URL.
Url parse_url(std::string_view url);
// A Location header may be absolute, host-relative ("/x") or, rarely, path-relative.
Url resolve_location(const Url& base, std::string_view location);

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;

  std::string header(std::string_view lowercase_name) const;  // empty when absent
  bool is_redirect() const { return status == 301 || status == 302 || status == 303 || status == 307 || status == 308; }
};

struct HttpRequest {
  Url url;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the connection goes to this IP address instead of a fresh lookup of url.host (TLS
  // still verifies url.host): a caller that vetted the address it resolved connects to that one.
  std::string connect_address;
};

struct HttpSettings {
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds read_timeout{60};
};

// Plain requests, one connection each, redirects returned to the caller (which decides whether
// credentials may follow them). Transport failures (refused, reset, timeout) throw TransientError
// and TLS verification failures vlm::Error kUnavailable, each with the URL and the reason.
class HttpClient {
 public:
  explicit HttpClient(HttpSettings settings) : settings_(settings) {}

  HttpResponse head(const HttpRequest& request) const;
  HttpResponse get(const HttpRequest& request) const;
  // Streams the body to `sink` once `accept` has seen the status and headers. Either callback
  // returning false stops the transfer quietly (the caller knows why); the body field stays empty.
  HttpResponse get_streamed(const HttpRequest& request, const std::function<bool(const HttpResponse&)>& accept,
                            const std::function<bool(const char*, std::size_t)>& sink) const;

 private:
  HttpSettings settings_;
};

}  // namespace vlm::hub
