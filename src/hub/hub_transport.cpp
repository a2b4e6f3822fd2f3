#include "vlm/hub/hub_transport.h"

#include <string>

#include <nlohmann/json.hpp>

#include "vlm/error.h"

namespace vlm::hub {
namespace {

constexpr int kMaxRedirects = 10;
constexpr std::string_view kUserAgent = "vlmserve/0.1";

std::string hub_message(const HttpResponse& response) {
  std::string message = response.header("x-error-message");
  if (message.empty() && !response.body.empty() && response.body.size() < 4096) {
    nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
    if (body.is_object() && body.contains("error") && body["error"].is_string())
      message = body["error"].get<std::string>();
  }
  return message.empty() ? std::string() : " (hub says: " + message + ")";
}

}  // namespace

bool is_retryable_status(int status) { return status == 408 || status == 429 || status >= 500; }

void throw_for_status(const HttpResponse& response, std::string_view what, bool has_token) {
  const std::string prefix = std::string(what) + ": the hub answered " + std::to_string(response.status);
  const std::string said = hub_message(response);
  const std::string code = response.header("x-error-code");
  switch (response.status) {
    case 401:
      throw Error(ErrorCode::kUnavailable, prefix + " Unauthorized" + said +
                                               ": the repository does not exist, is private, or is gated; " +
                                               (has_token ? "the token in HF_TOKEN was not accepted for it"
                                                          : "set HF_TOKEN to a token that has access"));
    case 403:
      throw Error(
          ErrorCode::kUnavailable,
          prefix + " Forbidden" + said + ": " +
              (has_token ? "the token in HF_TOKEN lacks access; for a gated model, request access on its hub page"
                         : "set HF_TOKEN to a token that has access"));
    case 404: {
      std::string thing = code == "RevisionNotFound" ? "revision not found"
                          : code == "EntryNotFound"  ? "file not found in the repository"
                          : code == "RepoNotFound"   ? "repository not found"
                                                     : "not found";
      throw Error(ErrorCode::kNotFound, prefix + " Not Found, " + thing + said);
    }
    default: break;
  }
  if (is_retryable_status(response.status)) throw TransientError(prefix + said);
  throw Error(ErrorCode::kUnavailable, prefix + ", which vlmserve did not expect" + said);
}

HubTransport::HubTransport(const HubOptions& options)
    : client_(HttpSettings{options.connect_timeout, options.read_timeout}),
      endpoint_(options.endpoint),
      endpoint_url_(parse_url(options.endpoint)),
      token_(options.token) {}

std::vector<std::pair<std::string, std::string>> HubTransport::headers_for(const Url& url) const {
  std::vector<std::pair<std::string, std::string>> headers = {
      {"User-Agent", std::string(kUserAgent)},
      // Compressed bodies would hide the real size and break Range offsets.
      {"Accept-Encoding", "identity"},
  };
  // The token goes to the hub's own origin only; never to the CDN a download is redirected to.
  if (!token_.empty() && url.origin() == endpoint_url_.origin())
    headers.emplace_back("Authorization", "Bearer " + token_);
  return headers;
}

HttpResponse HubTransport::get(const std::string& url, std::string_view what) const {
  Url current = parse_url(url);
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    HttpResponse response = client_.get(HttpRequest{current, headers_for(current), {}});
    if (response.is_redirect() && !response.header("location").empty()) {
      current = resolve_location(current, response.header("location"));
      continue;
    }
    if (response.status >= 400) throw_for_status(response, what, !token_.empty());
    return response;
  }
  throw Error(ErrorCode::kUnavailable,
              std::string(what) + ": more than " + std::to_string(kMaxRedirects) + " redirects from " + url);
}

HttpResponse HubTransport::head(const std::string& url, std::string_view what) const {
  Url current = parse_url(url);
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    HttpResponse response = client_.head(HttpRequest{current, headers_for(current), {}});
    if (response.is_redirect() && !response.header("location").empty()) {
      Url next = resolve_location(current, response.header("location"));
      if (next.origin() == current.origin()) {  // a renamed repository; the CDN is not followed
        current = next;
        continue;
      }
    }
    if (response.status >= 400) throw_for_status(response, what, !token_.empty());
    return response;
  }
  throw Error(ErrorCode::kUnavailable,
              std::string(what) + ": more than " + std::to_string(kMaxRedirects) + " redirects from " + url);
}

HttpResponse HubTransport::download(const std::string& url, std::uint64_t offset, std::string_view what,
                                    const std::function<bool(const HttpResponse&)>& accept,
                                    const std::function<bool(const char*, std::size_t)>& sink) const {
  Url current = parse_url(url);
  HttpResponse first;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    auto headers = headers_for(current);
    if (offset > 0) headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-");
    bool passed_on = false;
    HttpResponse response = client_.get_streamed(
        HttpRequest{current, headers, {}},
        [&](const HttpResponse& seen) {
          if (seen.is_redirect() || seen.status >= 400) return false;
          passed_on = true;
          return accept(seen);
        },
        sink);
    if (hop == 0) first = response;
    if (response.is_redirect() && !response.header("location").empty()) {
      current = resolve_location(current, response.header("location"));
      continue;
    }
    if (response.status >= 400 && response.status != 416) throw_for_status(response, what, !token_.empty());
    if (!passed_on && response.status != 416) {
      throw Error(ErrorCode::kUnavailable, std::string(what) + ": the hub answered " + std::to_string(response.status) +
                                               " with no body to download");
    }
    first.status = response.status;
    return first;
  }
  throw Error(ErrorCode::kUnavailable,
              std::string(what) + ": more than " + std::to_string(kMaxRedirects) + " redirects from " + url);
}

}  // namespace vlm::hub
