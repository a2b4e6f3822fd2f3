#include "serve.h"

#include <pthread.h>
#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <future>
#include <string_view>
#include <thread>

#include "app.h"
#include "http_server.h"
#include "server_context.h"
#include "vlm/image.h"
#include "vlm/logging.h"

namespace vlm::server {
namespace {

// After the drain, how long the rest of shutdown may take: connection workers noticing their cut
// sockets (milliseconds), then a model finishing the forward pass it is in. Whatever is still
// running then is not waited for: exit comes within --drain-timeout-s plus 5 s (this, and a second
// for the signal to be taken and the process torn down).
constexpr auto kExitGrace = std::chrono::seconds(4);

[[noreturn]] void exit_now(int status) {
  std::fflush(stderr);
  std::_Exit(status);
}

}  // namespace

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

  ServerContext context(config);
  App app(context);
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
  http.max_connections_per_peer = config.max_connections_per_peer;
  HttpServer server(http, app.http_routes(), app.hooks());
  server.bind();
  const char* scheme = config.ssl_cert_file.empty() ? "http" : "https";
  log::info("listening on {}://{}:{} ({} model(s) to load)", scheme, config.host, server.port(), config.models.size());
  // OpenCV read its decoder cap from the environment when it was loaded, before main; looser than
  // --max-pixels, the header probe alone enforces the limit (docs/server.md, "Images").
  if (const auto cap = decoder_pixel_cap(); static_cast<double>(cap) > config.max_pixels) {
    log::warn(
        "OpenCV's decoder cap OPENCV_IO_MAX_IMAGE_PIXELS={} is looser than --max-pixels {:.0f}: only the header probe "
        "enforces it; start the server with OPENCV_IO_MAX_IMAGE_PIXELS={:.0f} so that the decoder refuses larger "
        "images too",
        cap, config.max_pixels, config.max_pixels);
  }

  std::promise<void> listener_done;
  std::future<void> listener_stopped = listener_done.get_future();
  std::thread listener([&server, &listener_done] {
    server.listen();
    listener_done.set_value();
  });
  server.wait_until_listening();  // stop() before the accept loop runs would be lost
  std::atomic<bool> load_failed{false};
  std::thread loader([&context, &load_failed] {
    try {
      context.load_models();
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
    context.drain(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(config.drain_timeout_s)));
  }
  server.stop();
  const auto exit_deadline = std::chrono::steady_clock::now() + kExitGrace;
  const bool workers_done = listener_stopped.wait_until(exit_deadline) == std::future_status::ready;
  // The shutdown checkpoint is written now: nothing below may keep it from the disk.
  context.close_audit_log();
  if (!workers_done) {
    // Destructors would wait for the stuck workers and free the models under them.
    log::error("connection workers still busy {} s after the drain; exiting without them",
               std::chrono::duration_cast<std::chrono::seconds>(kExitGrace).count());
    exit_now(status);
  }
  listener.join();
  if (loader.joinable()) loader.join();
  // The context's destructor waits for each model's forward pass in progress (a cancelled request's
  // batch still runs to its end); a long one must not hold exit past the bound either.
  std::thread([exit_deadline, status] {
    std::this_thread::sleep_until(exit_deadline);
    constexpr std::string_view kMessage = "vlmserve: a forward pass outlived the shutdown bound; exiting without it\n";
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, kMessage.data(), kMessage.size());
    exit_now(status);
  }).detach();
  log::info("stopped");
  std::fflush(stderr);
  return status;
}

}  // namespace vlm::server
