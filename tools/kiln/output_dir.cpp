#include "output_dir.h"

#include <string>

#include "kiln/core/error.h"

namespace kiln::cli {

void check_output_dir(const std::filesystem::path& out, const char* marker, const char* verb) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(out, ec)) return;
  if (!fs::is_directory(out, ec)) {
    throw ConfigError("--out " + out.string() + ": exists and is not a directory; choose a directory path");
  }
  if (!fs::is_empty(out, ec) && !fs::exists(out / marker, ec)) {
    throw ConfigError("--out " + out.string() + ": exists and is not the output of " + verb + " (no " + marker +
                      "); choose a new directory, or remove this one first");
  }
}

}  // namespace kiln::cli
