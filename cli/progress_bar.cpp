#include "progress_bar.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace vlm::cli {
namespace {

constexpr int kBarWidth = 24;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

std::string clock_text(double seconds) {
  auto s = static_cast<long>(std::lround(seconds));
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

ProgressBar::ProgressBar(std::ostream& out, bool enabled, long total) : out_(out), enabled_(enabled), total_(total) {}

double ProgressBar::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::advance(long done) {
  done_ += done;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  draw();
}

void ProgressBar::draw() {
  // A video's frame count is the container's estimate: never show more done than total.
  long total = std::max(total_, done_);
  double fraction = total > 0 ? static_cast<double>(done_) / static_cast<double>(total) : 1.0;
  auto filled = static_cast<int>(fraction * kBarWidth);
  double elapsed = elapsed_s();
  double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  std::string eta = rate > 0 ? clock_text(static_cast<double>(total - done_) / rate) : "?";
  out_ << fmt::format("\r\033[K{:>6}/{} {:3.0f}% |{}{}| {:.1f}/s ETA {}", done_, total, fraction * 100,
                      std::string(static_cast<std::size_t>(filled), '#'),
                      std::string(static_cast<std::size_t>(kBarWidth - filled), '.'), rate, eta)
       << std::flush;
  drawn_ = true;
}

void ProgressBar::clear() {
  if (enabled_ && drawn_) out_ << "\r\033[K" << std::flush;
  drawn_ = false;
}

void ProgressBar::finish() {
  if (!enabled_) return;
  draw();
  out_ << '\n' << std::flush;
  drawn_ = false;
}

}  // namespace vlm::cli
