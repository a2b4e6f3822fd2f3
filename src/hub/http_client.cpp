// The one translation unit that includes cpp-httplib (compile time, and one place to swap it).
#define CPPHTTPLIB_OPENSSL_SUPPORT
#include "vlm/hub/http_client.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "vlm/error.h"

namespace vlm::hub {
namespace {

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

int default_port(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

HttpResponse convert_head(const httplib::Response& response) {
  HttpResponse converted;
  converted.status = response.status;
  for (const auto& [name, value] : response.headers) converted.headers.emplace(lowercase(name), value);
  return converted;
}

std::string explain(httplib::Error error, const Url& url) {
  std::string reason = httplib::to_string(error);
  switch (error) {
    case httplib::Error::SSLServerVerification:
      reason += " (the certificate is not trusted; a private CA can be given with SSL_CERT_FILE)";
      break;
    case httplib::Error::SSLServerHostnameVerification:
      reason += " (the certificate is not for " + url.host + ")";
      break;
    case httplib::Error::Connection:
    case httplib::Error::ConnectionTimeout:
      reason += " (no route to the hub: check the network, a proxy, or HF_ENDPOINT; --offline uses the cache only)";
      break;
    default: break;
  }
  return reason;
}

[[noreturn]] void throw_transport(httplib::Error error, const Url& url) {
  std::string message = "network error for " + url.to_string() + ": " + explain(error, url);
  bool tls_refused = error == httplib::Error::SSLServerVerification ||
                     error == httplib::Error::SSLServerHostnameVerification || error == httplib::Error::SSLLoadingCerts;
  if (tls_refused) throw Error(ErrorCode::kUnavailable, message);
  throw TransientError(message);
}

class Connection {
 public:
  Connection(const HttpRequest& request, const HttpSettings& settings) : client_(request.url.origin()) {
    const Url& url = request.url;
    if (!request.connect_address.empty()) client_.set_hostname_addr_map({{url.host, request.connect_address}});
    client_.set_connection_timeout(static_cast<time_t>(settings.connect_timeout.count()), 0);
    client_.set_read_timeout(static_cast<time_t>(settings.read_timeout.count()), 0);
    client_.set_follow_location(false);
    client_.set_keep_alive(false);
    if (!client_.is_valid()) {
      throw Error(ErrorCode::kInvalidArgument, "cannot open a client for " + url.origin());
    }
  }
  httplib::Client& operator*() { return client_; }
  httplib::Client* operator->() { return &client_; }

 private:
  httplib::Client client_;
};

httplib::Headers to_headers(const HttpRequest& request) {
  httplib::Headers headers;
  for (const auto& [name, value] : request.headers) headers.emplace(name, value);
  return headers;
}

}  // namespace

std::string Url::origin() const {
  std::string text = scheme + "://" + host;
  if (port != default_port(scheme)) text += ":" + std::to_string(port);
  return text;
}

std::string Url::to_string() const { return origin() + target; }

Url parse_url(std::string_view text) {
  Url url;
  std::size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos)
    throw Error(ErrorCode::kInvalidArgument, "URL '" + std::string(text) + "' has no scheme");
  url.scheme = lowercase(std::string(text.substr(0, scheme_end)));
  if (url.scheme != "http" && url.scheme != "https") {
    throw Error(ErrorCode::kInvalidArgument, "URL '" + std::string(text) + "' is not http or https");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  std::size_t path_start = rest.find('/');
  std::string_view authority = rest.substr(0, path_start);
  url.target = path_start == std::string_view::npos ? "/" : std::string(rest.substr(path_start));
  if (authority.find('@') != std::string_view::npos) {
    throw Error(ErrorCode::kInvalidArgument, "URL '" + std::string(text) + "' carries credentials; use HF_TOKEN");
  }
  url.port = default_port(url.scheme);
  std::size_t colon = authority.rfind(':');
  bool bracketed_ipv6 = !authority.empty() && authority.front() == '[';
  if (colon != std::string_view::npos && (!bracketed_ipv6 || authority[colon - 1] == ']')) {
    std::string port(authority.substr(colon + 1));
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
        std::stoi(port) > 65535) {
      throw Error(ErrorCode::kInvalidArgument, "URL '" + std::string(text) + "' has a bad port '" + port + "'");
    }
    url.port = std::stoi(port);
    authority = authority.substr(0, colon);
  }
  url.host = std::string(authority);
  if (url.host.empty()) throw Error(ErrorCode::kInvalidArgument, "URL '" + std::string(text) + "' has no host");
  return url;
}

Url resolve_location(const Url& base, std::string_view location) {
  if (location.find("://") != std::string_view::npos) return parse_url(location);
  Url resolved = base;
  if (!location.empty() && location.front() == '/') {
    resolved.target = std::string(location);
  } else {
    std::string path = base.target.substr(0, base.target.find('?'));
    resolved.target = path.substr(0, path.rfind('/') + 1) + std::string(location);
  }
  return resolved;
}

std::string HttpResponse::header(std::string_view lowercase_name) const {
  auto found = headers.find(std::string(lowercase_name));
  return found == headers.end() ? std::string() : found->second;
}

HttpResponse HttpClient::head(const HttpRequest& request) const {
  Connection connection(request, settings_);
  httplib::Result result = connection->Head(request.url.target, to_headers(request));
  if (!result) throw_transport(result.error(), request.url);
  return convert_head(*result);
}

HttpResponse HttpClient::get(const HttpRequest& request) const {
  Connection connection(request, settings_);
  httplib::Result result = connection->Get(request.url.target, to_headers(request));
  if (!result) throw_transport(result.error(), request.url);
  HttpResponse response = convert_head(*result);
  response.body = result->body;
  return response;
}

HttpResponse HttpClient::get_streamed(const HttpRequest& request,
                                      const std::function<bool(const HttpResponse&)>& accept,
                                      const std::function<bool(const char*, std::size_t)>& sink) const {
  Connection connection(request, settings_);
  HttpResponse seen;
  bool stopped_by_caller = false;
  httplib::Result result = connection->Get(
      request.url.target, to_headers(request),
      [&](const httplib::Response& response) {
        seen = convert_head(response);
        stopped_by_caller = !accept(seen);
        return !stopped_by_caller;
      },
      [&](const char* data, std::size_t size) {
        stopped_by_caller = !sink(data, size);
        return !stopped_by_caller;
      });
  if (!result && !(stopped_by_caller && result.error() == httplib::Error::Canceled)) {
    throw_transport(result.error(), request.url);
  }
  return seen;
}

}  // namespace vlm::hub
