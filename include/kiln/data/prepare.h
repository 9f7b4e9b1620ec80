// Read, clean and split a labelled file: the data half of `kiln prepare` and `kiln run`, in one place
// so the two verbs split the same rows the same way.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kiln/data/dataset.h"
#include "kiln/data/image.h"
#include "kiln/data/stratified_split.h"

namespace kiln::data {

struct PrepareOptions {
  /// Columns, format, cleaning (see LoadOptions; its defaults).
  LoadOptions load;
  /// Test/validation shares, seed, rare-class policy (see SplitOptions; its defaults).
  SplitOptions split;
  /// When set and the rows have images, every image is read and decoded before splitting
  /// (check_images): kError throws naming the row and file, kSkip drops the row and counts it under
  /// "bad_image". Unset (default): images are not opened here.
  std::optional<BadImagePolicy> on_bad_image;
  ImageLimits image_limits;
  /// When set, the input is an IDX images file and this its IDX labels file (see load_idx); the
  /// images are saved as PNG files under `<out>/images/<label>/` by write_prepared. Default: none.
  std::string idx_labels;
};

/// Rows per label.
using ClassCounts = std::map<std::string, std::int64_t>;

/// A cleaned data set and its stratified split.
struct PreparedData {
  /// Every row kept by cleaning; the split's indices point into it.
  Dataset dataset;
  SplitResult split;
  /// What cleaning read, dropped and kept; `report.splits` holds the split options, sizes and
  /// per-class counts (the "splits" object of prepare's report.json).
  DataReport report;
  /// Whether a validation split was asked for (split.val_size > 0).
  bool has_val = false;

  /// The rows of one split as their own data sets (same base_dir), in the split's order.
  [[nodiscard]] Dataset train() const { return dataset.select(split.train); }
  [[nodiscard]] Dataset val() const { return dataset.select(split.val); }
  [[nodiscard]] Dataset test() const { return dataset.select(split.test); }
};

/// Loads `path` ("-" = standard input) with options.load (or, with options.idx_labels, the IDX pair
/// with load_idx), then splits it with options.split. An IDX images file passed without
/// idx_labels is a ConfigError naming the flag.
/// Throws what load_labeled and stratified_split throw (ConfigError for bad options, DataError for
/// data that cannot be loaded or split; messages name the column, option or value and the fix).
[[nodiscard]] PreparedData prepare_data(const std::string& path, const PrepareOptions& options);

/// Writes `out_dir`/train.csv, test.csv, val.csv (when prepared.has_val) and report.json
/// (`report`, pretty-printed) through one core::AtomicDirectory: `out_dir` is replaced whole or not
/// at all (an earlier output stays complete when any write fails). Image paths in the CSVs are
/// relative to `out_dir` (see write_csv); images held as bytes (IDX input) are first written to
/// `out_dir`/images/<label>/<row>.png, row = the example's 1-based position in prepared.dataset. Throws IoError naming the file, the failed step and the
/// fix. Does not check what `out_dir` held before: callers that must not replace a foreign
/// directory check first.
void write_prepared(const std::filesystem::path& out_dir, const PreparedData& prepared, const nlohmann::json& report);

/// Rows of `ds` at `rows`, per label.
[[nodiscard]] ClassCounts count_labels(const Dataset& ds, const std::vector<std::size_t>& rows);

/// "error" | "drop" | "train-only": the name parse_rare_class_policy reads.
[[nodiscard]] const char* rare_class_policy_name(RareClassPolicy policy);

/// The report `kiln prepare` prints, as text ending in a blank line: rows read/kept/dropped by
/// reason, imbalance, text lengths (when the rows have text), rare classes, and a table of class
/// counts before and after cleaning and per split, with totals.
[[nodiscard]] std::string summary_table(const PreparedData& prepared, const PrepareOptions& options);

}  // namespace kiln::data
