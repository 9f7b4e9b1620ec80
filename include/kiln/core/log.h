// Logging for the CLI and the server. Library code reports through return values and exceptions;
// it may emit warnings through warn(), which the CLI routes to stderr.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace kiln::core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

/// Where messages go. Default: stderr, "kiln: warning: ..." for warnings and errors. Thread-safe.
using LogSink = std::function<void(LogLevel, std::string_view)>;
void set_log_sink(LogSink sink);
void set_log_level(LogLevel min_level);

void log(LogLevel level, std::string_view message);
inline void warn(std::string_view message) { log(LogLevel::kWarning, message); }
inline void info(std::string_view message) { log(LogLevel::kInfo, message); }

}  // namespace kiln::core
