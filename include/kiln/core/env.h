// The seam between Kiln's durable writes and the operating system (after LevelDB's `Env`): every
// file or directory the atomic writer (kiln/core/atomic_output.h) creates, writes, syncs, renames or
// removes goes through the process's current Env. The default is the POSIX one; tests install a
// fault-injecting Env with ScopedEnv to make any single operation fail and check what is left on
// disk.
#pragma once

#include <cstddef>
#include <filesystem>

namespace kiln::core {

/// File-system operations, each returning 0 on success or an errno value (ENOSPC, EIO, ...) on
/// failure; none throws. The caller (the atomic writer) turns a failure into an IoError naming the
/// file and the fix. Implementations must be thread-safe: several threads write through one Env.
class Env {
 public:
  virtual ~Env() = default;

  /// Creates `path` for writing (O_CREAT | O_EXCL: never an existing file) and stores its
  /// descriptor in `*fd`.
  [[nodiscard]] virtual int open_for_write(const std::filesystem::path& path, int* fd) = 0;
  /// Writes up to `n` bytes of `data` to `fd`, storing how many were written in `*written`
  /// (>= 1 on success; a short write is not an error).
  [[nodiscard]] virtual int write(int fd, const void* data, std::size_t n, std::size_t* written) = 0;
  /// Flushes `fd`'s data and metadata to the device.
  [[nodiscard]] virtual int fsync(int fd) = 0;
  /// Closes `fd` (the descriptor is released even when this fails).
  [[nodiscard]] virtual int close(int fd) = 0;
  /// Renames `from` onto `to`, replacing a file or an empty directory there.
  [[nodiscard]] virtual int rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  /// Swaps `a` and `b`, both of which exist, in one step (Linux renameat2 RENAME_EXCHANGE). EINVAL
  /// or ENOSYS when the file system cannot: the caller then falls back to two renames.
  [[nodiscard]] virtual int exchange(const std::filesystem::path& a, const std::filesystem::path& b) = 0;
  /// Flushes directory `dir`'s entries (the names created, renamed or removed in it).
  [[nodiscard]] virtual int fsync_dir(const std::filesystem::path& dir) = 0;
  /// Removes a file or an empty directory.
  [[nodiscard]] virtual int remove(const std::filesystem::path& path) = 0;
  /// Creates directory `path` (its parent exists). EEXIST when it is already there.
  [[nodiscard]] virtual int mkdir(const std::filesystem::path& path) = 0;
};

/// The POSIX implementation (the default). Thread-safe; lives for the whole process.
[[nodiscard]] Env& posix_env();

/// The Env durable writes go through now: the innermost live ScopedEnv's, else posix_env().
/// Thread-safe.
[[nodiscard]] Env& current_env();

/// Installs `env` as current_env() for the whole process until destroyed, then restores the
/// previous one. `env` must outlive this object. Scopes nest and must end in reverse order (one
/// test at a time; writes already under way on other threads finish on the Env they started with).
class ScopedEnv {
 public:
  explicit ScopedEnv(Env& env);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  Env* previous_;
};

}  // namespace kiln::core
