#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The one seam between vlmserve and the HTTP library: only http_server.cpp includes httplib.h, so
// swapping or upgrading the library touches one file (llama.cpp tools/server/server-http.h).
namespace vlm::server {

struct CaseInsensitiveLess {
  bool operator()(std::string_view a, std::string_view b) const;
  using is_transparent = void;
};
using HeaderMap = std::multimap<std::string, std::string, CaseInsensitiveLess>;

// One part of a multipart/form-data body, in the order the client sent it.
struct FormPart {
  std::string name;
  std::string filename;  // empty for plain fields
  std::string content_type;
  std::string content;
};

struct HttpRequest {
  std::string method;
  std::string path;         // without the query string
  std::string remote_addr;  // the socket peer; client-sent address headers are never consulted
  HeaderMap headers;
  std::multimap<std::string, std::string> query;
  std::string body;  // empty for multipart bodies, whose parts are in `form`
  std::vector<FormPart> form;
  std::string request_id;
  std::chrono::steady_clock::time_point start;
  std::function<bool()> is_connection_closed;
  // Set by HttpHooks::before to hold something (an admission slot) for the whole request: the
  // server keeps it until the response is written or the connection is lost.
  std::shared_ptr<void> hold;

  std::string header(std::string_view name) const;  // "" when absent
  bool has_header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Runs on the connection's thread once this response is written to the socket; not when the
  // connection is lost first. For what can only be measured after the write (the respond stage).
  std::function<void()> on_written;
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

struct HttpRoute {
  std::string method;
  std::string path;
  HttpHandler handler;
};

// Policy the server applies around routes; the application decides, the adapter only calls.
struct HttpHooks {
  // Runs once headers are parsed and before the body is read (auth, request id, early refusals).
  // Returning a response ends the request without reading its body.
  std::function<std::optional<HttpResponse>(HttpRequest&)> before;
  // Runs for every response, routed or not, before it is written (access log, metrics); headers
  // it appends to `extra_headers` go out with the response.
  std::function<void(const HttpRequest&, int status, std::size_t body_bytes,
                     std::vector<std::pair<std::string, std::string>>& extra_headers)>
      after;
  // Builds the body for errors the library detects itself (bad request line, header limits,
  // body over the limit, read timeout). `request_id` is empty when none was assigned yet.
  std::function<HttpResponse(int status, const std::string& request_id)> library_error;
  // Maps an exception escaping a handler to a response; it must not leak what() of non-vlm errors.
  std::function<HttpResponse(const HttpRequest&, std::exception_ptr)> exception;
  // The answer to a connection refused before its request is read: its peer already has
  // max_connections_per_peer open. Written as is, then the connection is closed (over TLS it is
  // closed unanswered, before the handshake).
  std::function<HttpResponse(const std::string& peer)> too_many_connections;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: pick a free port
  std::string ssl_cert_file;
  std::string ssl_key_file;
  std::size_t max_body_bytes = 20U << 20U;
  double read_timeout_s = 10.0;
  double write_timeout_s = 10.0;
  double keep_alive_timeout_s = 5.0;
  // Whole-phase bounds from accept, enforced by a watchdog: TLS handshake + request line + headers,
  // then body.
  double header_timeout_s = 10.0;
  double body_timeout_s = 60.0;
  int threads = 8;                    // connection workers kept alive
  int max_threads = 64;               // workers under load; beyond that connections wait in the accept queue
  int max_pending_connections = 256;  // accepted but unserved; beyond that they are closed at once
  int max_connections_per_peer = 32;  // open connections from one address; 0: no cap
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, std::vector<HttpRoute> routes, HttpHooks hooks);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the socket; throws vlm::Error kIo when the address is taken or TLS files are unusable.
  void bind();
  int port() const;
  // Serves until stop(), then returns once every connection worker has ended.
  void listen();
  // Blocks until listen() has entered its accept loop.
  void wait_until_listening() const;
  // Stops accepting and cuts every connection, plain or TLS, whatever it is doing (a handshake, a
  // slow upload, an idle keep-alive, a handler still running), so listen() returns as soon as the
  // workers notice. Call it after the application has drained.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Is this exactly one of the routes' paths? Used by hooks for 404 vs 405 before the body is read.
std::vector<std::string> methods_for_path(const std::vector<HttpRoute>& routes, std::string_view path);

}  // namespace vlm::server
