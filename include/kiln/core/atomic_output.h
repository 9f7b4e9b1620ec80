// Outputs that appear whole or not at all: written into a temporary sibling, then renamed into place.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace kiln::core {

/// A directory built in a temporary sibling (`.NAME.tmp-<pid>-<n>`) and renamed onto `target` by
/// commit(). Destroying it without commit() removes the temporary: a crash or an exception never
/// leaves a half-written `target`. If `target` exists, commit() replaces it (the old one is removed
/// only after the new one is in place). Not thread-safe; one writer per instance.
class AtomicDirectory {
 public:
  explicit AtomicDirectory(std::filesystem::path target);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  /// Where to write files now (the temporary directory).
  [[nodiscard]] const std::filesystem::path& path() const { return temp_; }
  /// The final location.
  [[nodiscard]] const std::filesystem::path& target() const { return target_; }
  /// Moves the temporary directory onto target(). Throws IoError on failure.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  bool committed_ = false;
};

/// Writes `content` to `path` atomically (temporary sibling + fsync + rename). Throws IoError.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

/// Reads a whole file. Throws IoError naming the path if it is missing, a directory or unreadable.
[[nodiscard]] std::string read_file(const std::filesystem::path& path);

/// Throws IoError (with a hint) unless `path` names an existing regular, readable file.
void require_regular_file(const std::filesystem::path& path, std::string_view what = "input file");

}  // namespace kiln::core
