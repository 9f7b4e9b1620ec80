#include "kiln/core/log.h"

#include <atomic>
#include <iostream>
#include <mutex>

namespace kiln::core {
namespace {

std::mutex g_mu;
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

LogSink& sink() {
  static LogSink s = [](LogLevel level, std::string_view msg) {
    const char* tag = level == LogLevel::kError ? "error: " : level == LogLevel::kWarning ? "warning: " : "";
    std::cerr << "kiln: " << tag << msg << '\n';
  };
  return s;
}

}  // namespace

void set_log_sink(LogSink s) {
  std::lock_guard<std::mutex> lock(g_mu);
  sink() = std::move(s);
}

void set_log_level(LogLevel min_level) { g_level = static_cast<int>(min_level); }

void log(LogLevel level, std::string_view message) {
  if (static_cast<int>(level) < g_level.load()) return;
  std::lock_guard<std::mutex> lock(g_mu);
  if (sink()) sink()(level, message);
}

}  // namespace kiln::core
