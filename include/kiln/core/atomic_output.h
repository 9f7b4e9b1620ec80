// The one atomic writer: every durable output of Kiln (artifacts, prepare and tfidf outputs,
// checkpoints, safetensors, configs) appears whole or not at all. A file is written into a
// temporary sibling, fsynced, closed (errors checked), renamed onto its name, and its directory
// fsynced; a directory is built in a temporary sibling and swapped into place the same way (a new
// file at the top of that temporary is written under its own name and fsynced, the temporary's
// one fsync covering the names). A file's writeback to disk starts while it is being written. Every
// step goes through current_env() (kiln/core/env.h), so tests can make any one of them fail.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::core {

/// A file streamed into a temporary sibling (`.NAME.tmp-<pid>-<n>`) and renamed onto `target` by
/// commit(). Destroying it without commit() closes and removes the temporary, so an exception or a
/// failed step never leaves a half-written `target`; an existing `target` is replaced only by the
/// complete new file. Writes are buffered (64 KiB). Every failure throws IoError naming `target`,
/// the step, the system's reason and a fix, e.g. "writing out/kiln.json: fsync failed: No space
/// left on device; free disk space and retry". Not thread-safe; one writer per instance.
class AtomicDirectory;

class AtomicFile {
 public:
  /// Creates missing parent directories and the temporary sibling. Throws IoError.
  explicit AtomicFile(std::filesystem::path target);
  /// File `name` (a relative path) inside `dir`'s new directory; messages name dir.target() / name,
  /// where the file will be once `dir` is committed. Commit this file before `dir`.
  AtomicFile(const AtomicDirectory& dir, const std::filesystem::path& name);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// Appends bytes. Throws IoError; after a failure the file can only be abandoned.
  void write(std::string_view bytes);
  void write(const void* data, std::size_t n);
  /// Flushes, fsyncs and closes the temporary, renames it onto target() and fsyncs the directory.
  /// Throws IoError (the temporary is removed; an existing target is left as it was).
  void commit();

  /// The final location (for a file of an AtomicDirectory: where it will be after that commits).
  [[nodiscard]] const std::filesystem::path& target() const { return shown_; }

 private:
  void open();
  void flush();
  void write_through(const char* data, std::size_t n);
  void close_fd();

  std::filesystem::path target_;
  std::filesystem::path shown_;  ///< the path messages name
  std::filesystem::path temp_;
  std::vector<std::filesystem::path> created_;  ///< parent directories made for this file
  int fd_ = -1;
  std::unique_ptr<char[]> buffer_;
  std::size_t buffered_ = 0;
  std::size_t written_ = 0;         ///< bytes written to fd_
  std::size_t writeback_from_ = 0;  ///< where the next early writeback starts (see write_through)
  bool in_directory_ = false;       ///< a new file written under its own name in a directory's temporary
  bool committed_ = false;
};

/// Writes `content` to `path` through one AtomicFile. Throws IoError.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

/// A directory built in a temporary sibling (`.NAME.tmp-<pid>-<n>`) and moved onto `target` by
/// commit(). Destroying it without commit() removes the temporary: a crash or an exception never
/// leaves a half-written `target`. If `target` exists, commit() swaps the new directory in with one
/// rename (RENAME_EXCHANGE; two renames where the file system cannot) and then removes the old one.
/// Write its files with AtomicFile / write_file_atomic under path(). Not thread-safe.
class AtomicDirectory {
 public:
  /// Creates missing parents and the temporary directory. Throws IoError, also when `target`
  /// exists and is not a directory.
  explicit AtomicDirectory(std::filesystem::path target);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  /// Writes `name` (a relative path) inside the new directory through one AtomicFile (messages name
  /// target() / name). Throws IoError.
  void write_file(const std::filesystem::path& name, std::string_view content) const;

  /// Where to write files now (the temporary directory).
  [[nodiscard]] const std::filesystem::path& path() const { return temp_; }
  /// The final location.
  [[nodiscard]] const std::filesystem::path& target() const { return target_; }
  /// Moves the temporary directory onto target(). Throws IoError naming target(); the previous
  /// target, if any, is then still in place.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::vector<std::filesystem::path> created_;  ///< parent directories made for this output
  bool committed_ = false;
};

/// Reads a whole file. Throws IoError naming the path if it is missing, a directory or unreadable.
[[nodiscard]] std::string read_file(const std::filesystem::path& path);

/// Throws IoError (with a hint) unless `path` names an existing regular, readable file.
void require_regular_file(const std::filesystem::path& path, std::string_view what = "input file");

}  // namespace kiln::core
