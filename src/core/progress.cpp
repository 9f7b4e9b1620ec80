#include "kiln/core/progress.h"

#include <unistd.h>

#include <cmath>

namespace kiln::core {

std::string format_duration(double s) {
  char buf[32];
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 1) std::snprintf(buf, sizeof buf, "%.0fms", s * 1000);
  else if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s / 3600), (static_cast<int>(s) / 60) % 60);
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::FILE* out)
    : label_(std::move(label)), total_(total), out_(out), live_(out && ::isatty(::fileno(out))),
      start_(std::chrono::steady_clock::now()), last_draw_(start_ - std::chrono::seconds(1)) {}

ProgressBar::~ProgressBar() {
  if (live_ && !finished_) std::fputc('\n', out_);
}

void ProgressBar::update(int64_t done, const std::string& suffix) {
  done_ = done;
  suffix_ = suffix;
  draw(false);
}

void ProgressBar::finish(const std::string& suffix) {
  if (!suffix.empty()) suffix_ = suffix;
  if (total_ > 0) done_ = total_;
  draw(true);
  if (live_) std::fputc('\n', out_);
  finished_ = true;
}

void ProgressBar::draw(bool force) {
  if (!live_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0;
  std::string bar;
  if (total_ > 0) {
    const int width = 24;
    const double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    const int full = static_cast<int>(frac * width);
    bar = "[" + std::string(static_cast<std::size_t>(full), '#') + std::string(static_cast<std::size_t>(width - full), '.') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%% ", frac * 100);
    bar += pct;
  }
  const double eta = (total_ > 0 && rate > 0) ? static_cast<double>(total_ - done_) / rate : NAN;
  char stats[96];
  std::snprintf(stats, sizeof stats, "%.0f it/s ETA %s ", rate, format_duration(eta).c_str());
  std::fprintf(out_, "\r\033[K%s %s%s%s", label_.c_str(), bar.c_str(), stats, suffix_.c_str());
  std::fflush(out_);
}

}  // namespace kiln::core
