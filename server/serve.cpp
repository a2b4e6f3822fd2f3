#include "serve.h"

#include <pthread.h>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <thread>

#include "app.h"
#include "http_server.h"
#include "vlm/logging.h"

namespace vlm::server {

int serve(const ServerConfig& config) {
  // Blocked before any thread starts so every thread inherits the mask and only the loop below
  // ever sees the signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A write over RLIMIT_FSIZE (systemd's LimitFSIZE=) would otherwise kill the process; ignored, the
  // write fails with EFBIG and the audit log handles it as it does a full disk.
  std::signal(SIGXFSZ, SIG_IGN);

  App app(config);
  HttpServerOptions http;
  http.host = config.host;
  http.port = config.port;
  http.ssl_cert_file = config.ssl_cert_file;
  http.ssl_key_file = config.ssl_key_file;
  http.max_body_bytes = static_cast<std::size_t>(config.max_body_mb * 1024.0 * 1024.0);
  http.read_timeout_s = config.read_timeout_s;
  http.write_timeout_s = config.write_timeout_s;
  http.header_timeout_s = config.header_timeout_s;
  http.body_timeout_s = config.timeout_s;
  http.threads = config.http_threads;
  http.max_threads = config.http_max_threads;
  http.max_pending_connections = config.max_pending_connections;
  HttpServer server(http, app.http_routes(), app.hooks());
  server.bind();
  const char* scheme = config.ssl_cert_file.empty() ? "http" : "https";
  log::info("listening on {}://{}:{} ({} model(s) to load)", scheme, config.host, server.port(), config.models.size());

  std::thread listener([&server] { server.listen(); });
  server.wait_until_listening();  // stop() before the accept loop runs would be lost
  std::atomic<bool> load_failed{false};
  std::thread loader([&app, &load_failed] {
    try {
      app.load_models();
      log::info("ready");
    } catch (const std::exception&) {
      load_failed = true;
    }
  });

  int signal_number = 0;
  const timespec tick{0, 100'000'000};
  while (!load_failed.load()) {
    signal_number = sigtimedwait(&signals, nullptr, &tick);
    if (signal_number > 0) break;
  }
  int status = 0;
  if (load_failed.load()) {
    log::error("shutting down: a model failed to load");
    status = 1;
  } else {
    log::info("received {}, draining (at most {} s)", signal_number == SIGINT ? "SIGINT" : "SIGTERM",
              config.drain_timeout_s);
    loader.join();  // a model still loading finishes first; its batcher is then stopped cleanly
    // Requests still running past the bound are cut off; the exit is still the one asked for.
    app.drain(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(config.drain_timeout_s)));
  }
  server.stop();
  listener.join();
  if (loader.joinable()) loader.join();
  log::info("stopped");
  std::fflush(stderr);
  return status;
}

}  // namespace vlm::server
