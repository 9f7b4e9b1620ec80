// A scratch directory for fetchers: created with a unique name, removed with everything in it.
#pragma once

#include <filesystem>
#include <string>

namespace kiln::data {

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
