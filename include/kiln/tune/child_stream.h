// Runs a child program and streams its output line by line while it runs, so the tuning loop can
// read a trial's per-epoch metric and stop the trial early (prune), on a time limit or on request.
#pragma once

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::tune {

enum class OutputStream { kStdout = 0, kStderr = 1 };

struct ChildStreamOptions {
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

struct ChildStreamResult {
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
[[nodiscard]] ChildStreamResult run_streaming(const std::vector<std::string>& argv, const ChildStreamOptions& options,
                                              const LineHandler& on_line, const std::atomic<bool>* cancel = nullptr);

}  // namespace kiln::tune
