// The --out directory of a verb that writes a directory atomically (prepare, tfidf).
#pragma once

#include <filesystem>

namespace kiln::cli {

/// Accepts a path that does not exist, an empty directory, or an earlier output of the same verb (it
/// holds `marker`); throws ConfigError naming the path and the fix otherwise, so a verb never replaces
/// a directory it did not write.
void check_output_dir(const std::filesystem::path& out, const char* marker, const char* verb);

}  // namespace kiln::cli
