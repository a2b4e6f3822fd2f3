// The only translation unit that includes cpp-httplib (see http_server.h for why).
#include "http_server.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

// httplib listens with a backlog of 5. Under overload every refused client reconnects at once, the
// accept queue overflows, and the kernel drops the handshakes it cannot queue: those clients get a
// reset or nothing instead of a 503 (1,536 overflows and 219 lost requests in 15 s at 120
// connections). The kernel's own cap (net.core.somaxconn) bounds it instead.
#define CPPHTTPLIB_LISTEN_BACKLOG SOMAXCONN
#include <httplib.h>

#include "vlm/error.h"
#include "worker_pool.h"

namespace vlm::server {
namespace {

constexpr std::string_view kRequestIdHeader = "X-Request-Id";

std::pair<time_t, time_t> split_seconds(double seconds) {
  const double whole = std::floor(seconds);
  return {static_cast<time_t>(whole), static_cast<time_t>((seconds - whole) * 1e6)};
}

// Headers and query only: the body is not read yet when the hooks run.
HttpRequest convert_head(const httplib::Request& in, const httplib::Response& res) {
  HttpRequest out;
  out.method = in.method;
  out.path = in.path;
  out.remote_addr = in.remote_addr;
  for (const auto& [key, value] : in.headers) out.headers.emplace(key, value);
  for (const auto& [key, value] : in.params) out.query.emplace(key, value);
  out.request_id = res.get_header_value(std::string(kRequestIdHeader));
  out.start = in.start_time_ == std::chrono::steady_clock::time_point::min() ? std::chrono::steady_clock::now()
                                                                             : in.start_time_;
  out.is_connection_closed = in.is_connection_closed;
  return out;
}

HttpRequest convert_full(const httplib::Request& in, const httplib::Response& res) {
  HttpRequest out = convert_head(in, res);
  out.body = in.body;
  // Files and plain fields live in two maps; each keeps the client's order among equal names.
  for (const auto& [name, file] : in.form.files) {
    out.form.push_back({name, file.filename, file.content_type, file.content});
  }
  for (const auto& [name, field] : in.form.fields) {
    auto type = field.headers.find("Content-Type");
    out.form.push_back({name, "", type == field.headers.end() ? std::string() : type->second, field.content});
  }
  return out;
}

void apply(const HttpResponse& from, httplib::Response& to) {
  to.status = from.status;
  for (const auto& [key, value] : from.headers) to.set_header(key, value);
  if (!from.body.empty() || !from.content_type.empty()) to.set_content(from.body, from.content_type);
}

// httplib refuses a request line whose method it does not know with a bare 400 before anything
// else is parsed; it has still split the line, so a well-formed line with an unknown method (a
// token, then a target and an HTTP/1.x version) can be answered 405 or 404 like any other method.
bool is_unknown_method(const httplib::Request& req) {
  static constexpr std::string_view kTokenSymbols = "!#$%&'*+-.^_`|~";
  if (req.method.empty() || req.method.size() > 32 || req.target.empty() || req.target.front() != '/') return false;
  if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0") return false;
  // The methods httplib 0.41 parses (Server::parse_request_line); those reach the routes.
  static const std::set<std::string, std::less<>> kKnown = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                                            "CONNECT", "OPTIONS", "TRACE", "PATCH", "PRI"};
  if (kKnown.contains(req.method)) return false;
  return std::all_of(req.method.begin(), req.method.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kTokenSymbols.find(c) != std::string_view::npos;
  });
}

// A per-request deadline for the phases a client controls: the request line and headers, then the
// body. Socket read timeouts alone cannot stop a slowloris client, which sends one byte just
// before each timeout; the watchdog shuts the socket down when the deadline passes instead. It
// holds a dup() of each socket so a descriptor number reused by a newer connection is never hit.
class ConnectionDeadlines {
 public:
  using Clock = std::chrono::steady_clock;

  ConnectionDeadlines() : watchdog_([this] { watch(); }) {}
  ~ConnectionDeadlines() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    watchdog_.join();
    for (auto& [id, entry] : entries_) ::close(entry.fd);
  }

  std::uint64_t add(int fd, Clock::time_point deadline) {
    const int copy = ::dup(fd);
    if (copy < 0) return 0;
    std::lock_guard lock(mutex_);
    const std::uint64_t id = ++next_id_;
    entries_[id] = {copy, cutting_all_ ? Clock::time_point::max() : deadline};
    if (cutting_all_) ::shutdown(copy, SHUT_RDWR);
    return id;
  }

  // Shutdown: every connection, open now or accepted later, is cut whatever phase it is in.
  void cut_all() {
    std::lock_guard lock(mutex_);
    cutting_all_ = true;
    for (auto& [id, entry] : entries_) {
      ::shutdown(entry.fd, SHUT_RDWR);
      entry.deadline = Clock::time_point::max();
    }
  }

  void set(std::uint64_t id, Clock::time_point deadline) {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(id); it != entries_.end()) it->second.deadline = deadline;
  }

  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(id); it != entries_.end()) {
      ::close(it->second.fd);
      entries_.erase(it);
    }
  }

 private:
  struct Entry {
    int fd = -1;
    Clock::time_point deadline;
  };

  void watch() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, std::chrono::milliseconds(100));
      const auto now = Clock::now();
      for (auto& [id, entry] : entries_) {
        if (entry.deadline <= now) {
          ::shutdown(entry.fd, SHUT_RDWR);
          entry.deadline = Clock::time_point::max();
        }
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::uint64_t, Entry> entries_;
  std::uint64_t next_id_ = 0;
  bool cutting_all_ = false;
  bool stopping_ = false;
  std::thread watchdog_;
};

// When the connection the current worker thread is about to serve was accepted; set by
// AcceptStampedPool before httplib's task runs.
thread_local ConnectionDeadlines::Clock::time_point t_accepted{};

// The connection workers (WorkerPool), with each accepted connection stamped with its accept time. httplib
// enqueues a connection right after accept() and a worker may pick it up much later (all busy):
// the header deadline counts from the stamp, so waiting for a worker does not extend it.
class AcceptStampedPool final : public httplib::TaskQueue {
 public:
  AcceptStampedPool(std::size_t threads, std::size_t max_threads, std::size_t max_queued)
      : pool_(threads, max_threads, max_queued) {}

  bool enqueue(std::function<void()> fn) override {
    return pool_.enqueue([fn = std::move(fn), accepted = ConnectionDeadlines::Clock::now()] {
      t_accepted = accepted;
      fn();
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  WorkerPool pool_;
};

// Open connections per peer address, so one client cannot hold every worker with slow requests.
class PeerConnections {
 public:
  explicit PeerConnections(int limit) : limit_(limit) {}

  bool try_open(const std::string& peer) {
    if (limit_ <= 0) return true;
    std::lock_guard lock(mutex_);
    int& open = open_[peer];  // never left at 0: a refused peer already has `limit_` open
    if (open >= limit_) return false;
    ++open;
    return true;
  }

  void close(const std::string& peer) {
    if (limit_ <= 0) return;
    std::lock_guard lock(mutex_);
    if (auto it = open_.find(peer); it != open_.end() && --it->second <= 0) open_.erase(it);
  }

 private:
  const int limit_;
  std::mutex mutex_;
  std::map<std::string, int, std::less<>> open_;
};

constexpr std::size_t kRefusalDrainBytes = 64 * 1024;
constexpr std::size_t kLingerDrainBytes = 1024 * 1024;

// A complete response for a connection refused before any request was read from it.
std::string serialize_refusal(const HttpResponse& response) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " + httplib::status_message(response.status) +
                    "\r\nContent-Type: " + response.content_type +
                    "\r\nContent-Length: " + std::to_string(response.body.size()) + "\r\nConnection: close\r\n";
  for (const auto& [key, value] : response.headers) out += key + ": " + value + "\r\n";
  return out + "\r\n" + response.body;
}

// The connection the current worker thread serves (httplib runs a whole connection on one thread).
thread_local std::uint64_t t_connection = 0;
// Set when a response of 400 or more goes out: httplib already sends "Connection: close" with
// those, and after a framing error the rest of the bytes cannot be trusted to start a request.
thread_local bool t_close_after_response = false;
// HttpRequest::hold of the request the current worker thread serves.
thread_local std::shared_ptr<void> t_request_hold;
// HttpResponse::on_written of the response the current worker thread is about to write.
thread_local std::function<void()> t_on_written;

// The stream one request is read through, noting what httplib's reader cannot say: whether it gave
// up on a line over CPPHTTPLIB_MAX_LINE_LENGTH (its getline fails as if the client had closed, so a
// long request target got no answer at all) and whether any response bytes went out.
class RequestStream final : public httplib::Stream {
 public:
  explicit RequestStream(httplib::Stream& inner) : inner_(inner) {}

  bool overlong_line() const { return line_bytes_ >= CPPHTTPLIB_MAX_LINE_LENGTH; }
  bool wrote() const { return wrote_; }

  bool is_readable() const override { return inner_.is_readable(); }
  bool wait_readable() const override { return inner_.wait_readable(); }
  bool wait_writable() const override { return inner_.wait_writable(); }
  bool is_peer_alive() const override { return inner_.is_peer_alive(); }
  ssize_t read(char* ptr, size_t size) override {
    const ssize_t n = inner_.read(ptr, size);
    if (n > 0) {
      const std::string_view got(ptr, static_cast<std::size_t>(n));
      const auto newline = got.rfind('\n');
      line_bytes_ = newline == std::string_view::npos ? line_bytes_ + got.size() : got.size() - newline - 1;
    }
    return n;
  }
  ssize_t write(const char* ptr, size_t size) override {
    wrote_ = true;
    return inner_.write(ptr, size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { inner_.get_remote_ip_and_port(ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { inner_.get_local_ip_and_port(ip, port); }
  socket_t socket() const override { return inner_.socket(); }
  time_t duration() const override { return inner_.duration(); }
  void set_read_timeout(time_t sec, time_t usec) override { inner_.set_read_timeout(sec, usec); }

 private:
  httplib::Stream& inner_;
  std::size_t line_bytes_ = 0;
  bool wrote_ = false;
};

// The server's certificate and key, loaded once. It never changes after construction, so sessions
// are created from it without httplib::SSLServer's lock (OpenSSL's SSL_new is safe on a shared context).
class TlsContext {
 public:
  TlsContext(const std::string& cert_file, const std::string& key_file) : ctx_(httplib::tls::create_server_context()) {
    if (ctx_ != nullptr && !httplib::tls::set_server_cert_file(ctx_, cert_file.c_str(), key_file.c_str(), nullptr)) {
      httplib::tls::free_context(ctx_);
      ctx_ = nullptr;
    }
  }
  ~TlsContext() {
    if (ctx_ != nullptr) httplib::tls::free_context(ctx_);
  }
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  bool valid() const { return ctx_ != nullptr; }
  httplib::tls::ctx_t get() const { return ctx_; }

 private:
  httplib::tls::ctx_t ctx_;
};

// One TLS session over an accepted socket; freed (after a close_notify when `graceful`) on scope exit.
class TlsSession {
 public:
  TlsSession(const TlsContext& context, socket_t sock) : session_(httplib::tls::create_session(context.get(), sock)) {}
  ~TlsSession() {
    if (session_ == nullptr) return;
    if (handshake_done_) httplib::tls::shutdown(session_, graceful_);
    httplib::tls::free_session(session_);
  }
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Each wait is bounded by `read_timeout`; the whole handshake by the connection's header deadline
  // (the watchdog shuts the socket down under it, which fails the handshake).
  bool accept(socket_t sock, time_t read_timeout_sec, time_t read_timeout_usec) {
    httplib::tls::TlsError error;
    handshake_done_ = session_ != nullptr &&
                      httplib::tls::accept_nonblocking(session_, sock, read_timeout_sec, read_timeout_usec, &error);
    return handshake_done_;
  }
  void close_gracefully(bool graceful) { graceful_ = graceful; }
  httplib::tls::session_t get() const { return session_; }

 private:
  httplib::tls::session_t session_;
  bool handshake_done_ = false;
  bool graceful_ = false;
};

// httplib::Server::process_and_close_socket (0.41), and SSLServer's with TLS, with the connection
// registered for deadlines from accept and counted against its peer's cap before anything is read
// (for TLS: before the handshake, which a slowloris client can otherwise stretch without bound);
// the base versions are private, so this repeats their few lines around the protected
// process_request. Plain and TLS connections then run one keep-alive loop (serve_connection) over
// their stream, with two changes to httplib's (detail::process_server_socket_core), both of which
// could go upstream: one stream serves the whole connection, so bytes of pipelined requests that
// arrived with an earlier one stay in its read buffer (httplib makes a stream per request and drops
// them, so three requests in one write got one answer); and the connection closes after any
// response of 400 or more, as its "Connection: close" header says (httplib kept reading, so a
// request hidden in a header block refused 400 ran next).
class GuardedServer : public httplib::Server {
 public:
  GuardedServer(ConnectionDeadlines& deadlines, double header_timeout_s, int max_connections_per_peer,
                std::unique_ptr<TlsContext> tls, std::function<HttpResponse(const std::string&)> refusal,
                std::function<HttpResponse(int, const std::string&)> library_error)
      : deadlines_(deadlines),
        header_timeout_(std::chrono::duration_cast<ConnectionDeadlines::Clock::duration>(
            std::chrono::duration<double>(header_timeout_s))),
        peers_(max_connections_per_peer),
        tls_(std::move(tls)),
        refusal_(std::move(refusal)),
        library_error_(std::move(library_error)) {}

  ConnectionDeadlines::Clock::duration header_timeout() const { return header_timeout_; }
  ConnectionDeadlines::Clock::duration keep_alive_timeout() const {
    return std::chrono::seconds(keep_alive_timeout_sec_);
  }

 private:
  struct Peer {
    std::string remote_addr;
    int remote_port = 0;
    std::string local_addr;
    int local_port = 0;
  };

  bool process_and_close_socket(socket_t sock) override {
    const auto accepted =
        t_accepted == ConnectionDeadlines::Clock::time_point{} ? ConnectionDeadlines::Clock::now() : t_accepted;
    t_accepted = {};
    Peer peer;
    httplib::detail::get_remote_ip_and_port(sock, peer.remote_addr, peer.remote_port);
    if (!peers_.try_open(peer.remote_addr)) {
      // Over TLS no HTTP answer can precede a handshake, and a refusal must cost no more than a
      // close: the connection is closed unanswered.
      if (!tls_ && refusal_) send_raw(sock, serialize_refusal(refusal_(peer.remote_addr)));
      drain_and_close(sock);
      return false;
    }
    // Past already when the connection waited longer than the header timeout for a worker: the
    // watchdog cuts it before a byte is read.
    t_connection = deadlines_.add(sock, accepted + header_timeout_);
    httplib::detail::get_local_ip_and_port(sock, peer.local_addr, peer.local_port);
    bool ok = false;
    bool closed = false;
    if (tls_) {
      TlsSession session(*tls_, sock);
      if (session.accept(sock, read_timeout_sec_, read_timeout_usec_)) {
        httplib::detail::SSLSocketStream strm(sock, session.get(), read_timeout_sec_, read_timeout_usec_,
                                              write_timeout_sec_, write_timeout_usec_);
        bool websocket_upgraded = false;
        ok = serve_connection(
            strm, sock, peer, [&session](httplib::Request& req) { req.ssl = session.get(); }, websocket_upgraded,
            closed);
        session.close_gracefully(ok && !websocket_upgraded && !closed);
      }
    } else {
      httplib::detail::SocketStream strm(sock, read_timeout_sec_, read_timeout_usec_, write_timeout_sec_,
                                         write_timeout_usec_);
      bool websocket_upgraded = false;
      ok = serve_connection(strm, sock, peer, nullptr, websocket_upgraded, closed);
    }
    t_close_after_response = false;
    t_request_hold.reset();
    t_on_written = nullptr;
    if (closed) {
      httplib::detail::close_socket(sock);
    } else {
      httplib::detail::shutdown_socket(sock);
      httplib::detail::close_socket(sock);
    }
    deadlines_.remove(t_connection);
    t_connection = 0;
    peers_.close(peer.remote_addr);
    return ok;
  }

  // The keep-alive loop both plain and TLS connections run. `closed`: the socket was already shut
  // down for writing and drained after a last answer; only closing it is left.
  bool serve_connection(httplib::Stream& strm, socket_t sock, const Peer& peer,
                        const std::function<void(httplib::Request&)>& setup_request, bool& websocket_upgraded,
                        bool& closed) {
    bool ok = false;
    for (std::size_t left = keep_alive_max_count_; left > 0; --left) {
      if (!strm.is_readable() && !httplib::detail::keep_alive(svr_sock_, sock, keep_alive_timeout_sec_)) break;
      bool connection_closed = false;
      t_close_after_response = false;
      RequestStream request(strm);
      ok = process_request(request, peer.remote_addr, peer.remote_port, peer.local_addr, peer.local_port, left == 1,
                           connection_closed, setup_request, &websocket_upgraded);
      t_request_hold.reset();  // the response is written (or the connection is lost)
      if (auto on_written = std::exchange(t_on_written, nullptr); on_written && ok) on_written();
      if (!ok && request.overlong_line() && !request.wrote() && library_error_) {
        // Only a request line can be that long here: a header line over the limit is refused 400 first.
        const std::string answer = serialize_refusal(library_error_(414, ""));
        strm.write(answer.data(), answer.size());
        drain(sock, std::chrono::milliseconds(500));
        closed = true;
      }
      if (!ok || connection_closed || t_close_after_response) break;
    }
    return ok;
  }

  // Never blocks: a refusal fits any socket buffer.
  static void send_raw(socket_t sock, const std::string& response) {
    [[maybe_unused]] const auto sent = ::send(sock, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }

  // Closing with the client's bytes unread in the buffer would send a reset that can destroy the
  // answer before the client reads it, so what arrives is read and dropped first: for `linger`
  // (up to kLingerDrainBytes) after a last answer, or only what is already there for refusals,
  // whose worker must never wait (under a flood of refusals that wait would be the flood's cost).
  static void drain(socket_t sock, std::chrono::milliseconds linger) {
    ::shutdown(sock, SHUT_WR);
    const auto until = std::chrono::steady_clock::now() + linger;
    const std::size_t limit = linger.count() > 0 ? kLingerDrainBytes : kRefusalDrainBytes;
    char sink[4096];
    for (std::size_t dropped = 0; dropped < limit;) {
      const auto got = ::recv(sock, sink, sizeof(sink), MSG_DONTWAIT);
      if (got > 0) {
        dropped += static_cast<std::size_t>(got);
        continue;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || left.count() <= 0) break;
      pollfd readable{sock, POLLIN, 0};
      if (::poll(&readable, 1, static_cast<int>(left.count())) <= 0) break;
    }
  }

  static void drain_and_close(socket_t sock) {
    drain(sock, std::chrono::milliseconds(0));
    httplib::detail::close_socket(sock);
  }

  ConnectionDeadlines& deadlines_;
  ConnectionDeadlines::Clock::duration header_timeout_;
  PeerConnections peers_;
  std::unique_ptr<TlsContext> tls_;  // null: plain HTTP
  std::function<HttpResponse(const std::string&)> refusal_;
  std::function<HttpResponse(int, const std::string&)> library_error_;
};

}  // namespace

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) < std::tolower(static_cast<unsigned char>(y));
  });
}

std::string HttpRequest::header(std::string_view name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

bool HttpRequest::has_header(std::string_view name) const { return headers.find(name) != headers.end(); }

std::vector<std::string> methods_for_path(const std::vector<HttpRoute>& routes, std::string_view path) {
  std::vector<std::string> methods;
  for (const auto& route : routes) {
    if (route.path == path) methods.push_back(route.method);
  }
  return methods;
}

struct HttpServer::Impl {
  ConnectionDeadlines deadlines;  // declared first: destroyed after the server that uses it
  HttpServerOptions options;
  std::vector<HttpRoute> routes;
  HttpHooks hooks;
  std::unique_ptr<GuardedServer> server;
  int bound_port = -1;
};

HttpServer::HttpServer(HttpServerOptions options, std::vector<HttpRoute> routes, HttpHooks hooks)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->routes = std::move(routes);
  impl_->hooks = std::move(hooks);
  const auto& opt = impl_->options;

  std::unique_ptr<TlsContext> tls;
  if (!opt.ssl_cert_file.empty() || !opt.ssl_key_file.empty()) {
    if (opt.ssl_cert_file.empty() || opt.ssl_key_file.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "TLS needs both --ssl-cert-file and --ssl-key-file");
    }
    tls = std::make_unique<TlsContext>(opt.ssl_cert_file, opt.ssl_key_file);
    if (!tls->valid()) {
      throw Error(ErrorCode::kIo,
                  "cannot use TLS certificate '" + opt.ssl_cert_file + "' with key '" + opt.ssl_key_file + "'");
    }
  }
  impl_->server =
      std::make_unique<GuardedServer>(impl_->deadlines, opt.header_timeout_s, opt.max_connections_per_peer,
                                      std::move(tls), impl_->hooks.too_many_connections, impl_->hooks.library_error);
  auto& svr = *impl_->server;
  auto* impl = impl_.get();

  const auto threads = static_cast<std::size_t>(std::max(1, opt.threads));
  const auto max_threads = std::max(threads, static_cast<std::size_t>(opt.max_threads));
  const auto pending = static_cast<std::size_t>(std::max(1, opt.max_pending_connections));
  svr.new_task_queue = [threads, max_threads, pending]() -> httplib::TaskQueue* {
    return new AcceptStampedPool(threads, max_threads, pending);
  };
  svr.set_payload_max_length(opt.max_body_bytes);
  const auto [read_s, read_us] = split_seconds(opt.read_timeout_s);
  svr.set_read_timeout(read_s, read_us);
  const auto [write_s, write_us] = split_seconds(opt.write_timeout_s);
  svr.set_write_timeout(write_s, write_us);
  svr.set_keep_alive_timeout(static_cast<time_t>(std::max(1.0, opt.keep_alive_timeout_s)));
  svr.set_tcp_nodelay(true);
  // SO_REUSEADDR only: it lets a restart bind while old connections sit in TIME_WAIT. httplib's
  // default also sets SO_REUSEPORT, with which a second server on the same port starts fine and
  // the kernel splits connections between the two.
  svr.set_socket_options([](socket_t sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // Proxies are not trusted: X-Forwarded-For never replaces the socket peer.
  svr.set_trusted_proxies({});

  svr.set_pre_routing_handler([impl](const httplib::Request& req, httplib::Response& res) {
    if (t_connection != 0) {
      // Headers are in; the body gets its own bound (a slow upload holds a worker no longer).
      impl->deadlines.set(t_connection, std::chrono::steady_clock::now() + impl->server->header_timeout() +
                                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                std::chrono::duration<double>(impl->options.body_timeout_s)));
    }
    HttpRequest head = convert_head(req, res);
    std::optional<HttpResponse> early = impl->hooks.before ? impl->hooks.before(head) : std::nullopt;
    t_request_hold = std::move(head.hold);
    if (!head.request_id.empty()) res.set_header(std::string(kRequestIdHeader), head.request_id);
    if (!early) return httplib::Server::HandlerResponse::Unhandled;
    apply(*early, res);
    return httplib::Server::HandlerResponse::Handled;
  });

  for (const auto& route : impl_->routes) {
    httplib::Server::Handler handler = [impl, &route](const httplib::Request& req, httplib::Response& res) {
      // The body is read; the handler's own timeout governs from here.
      if (t_connection != 0) {
        impl->deadlines.set(t_connection, std::chrono::steady_clock::time_point::max());
      }
      HttpRequest full = convert_full(req, res);
      HttpResponse out;
      route.handler(full, out);
      t_on_written = std::move(out.on_written);
      apply(out, res);
    };
    if (route.method == "GET") {
      svr.Get(route.path, handler);
    } else if (route.method == "POST") {
      svr.Post(route.path, handler);
    } else if (route.method == "PUT") {
      svr.Put(route.path, handler);
    } else if (route.method == "DELETE") {
      svr.Delete(route.path, handler);
    } else if (route.method == "OPTIONS") {
      svr.Options(route.path, handler);
    } else {
      throw Error(ErrorCode::kInternal, "route " + route.path + " has unsupported method " + route.method);
    }
  }

  svr.set_exception_handler([impl](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    HttpRequest head = convert_head(req, res);
    apply(impl->hooks.exception(head, ep), res);
  });

  // Library-detected errors arrive here with an empty body; our own error responses already
  // carry one and pass through untouched.
  svr.set_error_handler([impl](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string id = res.get_header_value(std::string(kRequestIdHeader));
    int status = res.status;
    std::string allow;
    if (status == 400 && is_unknown_method(req)) {
      for (const auto& method : methods_for_path(impl->routes, req.target.substr(0, req.target.find('?')))) {
        allow += (allow.empty() ? "" : ", ") + method;
      }
      status = allow.empty() ? 404 : 405;
    }
    HttpResponse out = impl->hooks.library_error(status, id);
    if (!allow.empty()) out.headers.emplace_back("Allow", allow);
    apply(out, res);
    return httplib::Server::HandlerResponse::Handled;
  });

  // Expect: 100-continue is answered only after the same checks that run before a body is read
  // (size, auth, state), so a client told 413 never sends the body it announced.
  svr.set_expect_100_continue_handler([impl](const httplib::Request& req, httplib::Response& res) {
    HttpRequest head = convert_head(req, res);
    std::optional<HttpResponse> early = impl->hooks.before ? impl->hooks.before(head) : std::nullopt;
    if (!early) return static_cast<int>(httplib::StatusCode::Continue_100);
    if (!head.request_id.empty()) res.set_header(std::string(kRequestIdHeader), head.request_id);
    apply(*early, res);
    return res.status;
  });

  svr.set_post_routing_handler([impl](const httplib::Request& req, httplib::Response& res) {
    if (res.status >= 400) t_close_after_response = true;
    if (t_connection != 0) {
      impl->deadlines.set(t_connection, std::chrono::steady_clock::now() + impl->server->keep_alive_timeout() +
                                            impl->server->header_timeout() +
                                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                std::chrono::duration<double>(impl->options.write_timeout_s)));
    }
    if (!impl->hooks.after) return;
    HttpRequest head = convert_head(req, res);
    std::vector<std::pair<std::string, std::string>> extra;
    impl->hooks.after(head, res.status, res.body.size(), extra);
    for (const auto& [key, value] : extra) res.set_header(key, value);
  });
}

HttpServer::~HttpServer() = default;

void HttpServer::bind() {
  auto& opt = impl_->options;
  errno = 0;
  if (opt.port == 0) {
    impl_->bound_port = impl_->server->bind_to_any_port(opt.host);
  } else if (impl_->server->bind_to_port(opt.host, opt.port)) {
    impl_->bound_port = opt.port;
  }
  if (impl_->bound_port <= 0) {
    const int error = errno;
    const std::string where = opt.host + ":" + std::to_string(opt.port);
    if (error == EADDRINUSE) {
      throw Error(ErrorCode::kIo, "cannot listen on " + where + ": port " + std::to_string(opt.port) +
                                      " is already in use (another vlmserve?); pick another --port");
    }
    throw Error(ErrorCode::kIo, "cannot listen on " + where + " (" +
                                    (error != 0 ? std::string(std::strerror(error)) + "; " : std::string()) +
                                    "port in use, or not an address of this machine)");
  }
}

int HttpServer::port() const { return impl_->bound_port; }

void HttpServer::listen() { impl_->server->listen_after_bind(); }

void HttpServer::wait_until_listening() const { impl_->server->wait_until_ready(); }

void HttpServer::stop() {
  impl_->server->stop();
  impl_->deadlines.cut_all();
}

}  // namespace vlm::server
