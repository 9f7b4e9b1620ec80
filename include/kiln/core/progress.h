// A live progress bar for terminals, for the CLI. Redraws at most every 100 ms on one line.
// Not thread-safe: one bar, one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace kiln::core {

class ProgressBar {
 public:
  /// `total` items (0 = unknown), drawn on `out` (default stderr) only when it is a terminal.
  ProgressBar(std::string label, int64_t total, std::FILE* out = stderr);
  ~ProgressBar();
  /// Sets the items done and the trailing text (e.g. "loss 0.41 lr 1.0e-03"); redraws if due.
  void update(int64_t done, const std::string& suffix = "");
  /// Draws the final state and ends the line.
  void finish(const std::string& suffix = "");
  /// True when `out` is a terminal (bars are drawn) — callers print one line per epoch otherwise.
  [[nodiscard]] bool live() const { return live_; }

 private:
  void draw(bool force);

  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  std::string suffix_;
  std::FILE* out_;
  bool live_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// "1m05s", "12.3s", "450ms".
[[nodiscard]] std::string format_duration(double seconds);

}  // namespace kiln::core
