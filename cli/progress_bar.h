#pragma once

#include <chrono>
#include <ostream>

namespace vlm::cli {

// A one-line progress bar for a terminal: "  37/120  31% |#####.....| 4.2/s ETA 0:19", redrawn in
// place at most ten times a second. Disabled (stderr is not a terminal) it draws nothing.
class ProgressBar {
 public:
  ProgressBar(std::ostream& out, bool enabled, long total);

  // Starts the clock that rate, ETA and elapsed_s() count from (the work, not the model load).
  void start() { start_ = std::chrono::steady_clock::now(); }
  void set_total(long total) { total_ = total; }
  long total() const { return total_; }
  void advance(long done);
  // Clears the bar so a message line can be printed; the next advance() redraws it.
  void clear();
  // Draws the final state and ends the line.
  void finish();
  double elapsed_s() const;

 private:
  void draw();

  std::ostream& out_;
  bool enabled_;
  long total_;
  long done_ = 0;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace vlm::cli
