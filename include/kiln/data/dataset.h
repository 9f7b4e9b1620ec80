// Examples (text, image, label) and labelled data sets, loaded and cleaned, with a report of what was dropped and why.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/data/reader.h"

namespace kiln::core {
class AtomicFile;
}  // namespace kiln::core

namespace kiln::data {

/// An image as an example refers to it: a path (relative paths are relative to the data file's
/// folder, `Examples::base_dir`) or the encoded file's bytes (PNG/JPEG, e.g. from an HTTP request).
/// Exactly one of the two is set.
struct ImageRef {
  std::string path;
  std::string bytes;
  [[nodiscard]] bool empty() const { return path.empty() && bytes.empty(); }
};

/// One record of a data set: optional text, optional image, label (empty when unlabelled).
struct Example {
  std::optional<std::string> text;
  std::optional<ImageRef> image;
  std::string label;
};

/// Model inputs, stored by modality: each modality the data has holds one entry per example, a
/// modality it lacks is an empty vector. Preprocessors read the modality they encode.
struct Examples {
  std::vector<std::string> texts;
  std::vector<ImageRef> images;
  /// Folder that relative image paths are relative to (the data file's folder). Default: the
  /// current directory.
  std::string base_dir;

  [[nodiscard]] bool has_text() const { return !texts.empty(); }
  [[nodiscard]] bool has_images() const { return !images.empty(); }
  /// Examples: the length of the modalities present (they agree; see check_consistent).
  [[nodiscard]] std::size_t size() const { return has_text() ? texts.size() : images.size(); }
  /// Throws DataError when the modalities present have different lengths.
  void check_consistent(std::size_t expected) const;
  /// Appends one example's inputs (its label is ignored here). The first example decides which
  /// modalities the set has; a later one lacking one of them is a DataError.
  void push_back(const Example& e);
  /// Example i's inputs.
  [[nodiscard]] Example example(std::size_t i) const;
  /// The examples at `indices`, in that order.
  [[nodiscard]] Examples select(const std::vector<std::size_t>& indices) const;
};

/// A labelled data set of examples: labels[i] belongs to example i.
struct Dataset : Examples {
  std::vector<std::string> labels;
  [[nodiscard]] std::size_t size() const { return labels.size(); }
  /// Example i with its label.
  [[nodiscard]] Example example(std::size_t i) const;
  void push_back(const Example& e);
  /// The rows at `indices`, in that order.
  [[nodiscard]] Dataset select(const std::vector<std::size_t>& indices) const;
};

struct LoadOptions {
  ReaderOptions reader;
  /// Column holding the text. Default "text". Empty = the rows have no text (then image_col must
  /// be set).
  std::string text_col = "text";
  /// Column holding an image path, relative to the data file's folder (Dataset::base_dir) or
  /// absolute. Empty (the default) = the rows have no image.
  std::string image_col;
  /// Column holding the label. Default "label".
  std::string label_col = "label";
  /// Keep only rows whose label is one of these; empty = keep every label.
  std::vector<std::string> allowed_labels;
  /// Drop rows whose inputs exactly repeat an earlier row's (the first occurrence is kept): the same
  /// text, or with an image column the same text and image path. Default false.
  bool dedupe = false;
};

/// Text length statistics, in Unicode code points.
struct LengthStats {
  std::int64_t min = 0, max = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
};

struct DataReport {
  std::string input;
  std::int64_t rows_read = 0;
  std::int64_t rows_kept = 0;
  /// Reason → rows dropped: "missing_text" (when a text column is read), "missing_image" (when an
  /// image column is read), "missing_label", "label_not_allowed", "duplicate", "bad_utf8". Every
  /// reason that applies appears, with 0 when nothing was dropped for it. Persisted in report.json:
  /// never rename.
  std::map<std::string, std::int64_t> dropped;
  std::map<std::string, std::int64_t> class_counts_before;
  std::map<std::string, std::int64_t> class_counts_after;
  /// Largest class count / smallest class count after cleaning.
  double imbalance_ratio = 0;
  /// Whether the rows have text; without, text_length is all zeros and left out of to_json.
  bool has_text = true;
  LengthStats text_length;
  /// Split sizes and per-class counts per split, filled by the prepare stage.
  nlohmann::json splits = nlohmann::json::object();
};

[[nodiscard]] nlohmann::json to_json(const DataReport& report);

/// The drop reasons, in the order a row is checked, that apply to a load with these options.
[[nodiscard]] std::vector<std::string> drop_reasons(const LoadOptions& options);

/// Reads and cleans `path` (a folder: see load_image_folder): drops rows whose text, image path or label is missing, empty or
/// whitespace-only, rows whose label is not allowed, and (with dedupe) duplicates. With an image
/// column, image paths are kept as written and `base_dir` is the data file's folder (relative to
/// the current directory; "" for a file there or standard input). Throws ConfigError for empty or
/// equal column names, DataError for a column the file lacks (naming the columns found) and when
/// every row is dropped, naming the filter that dropped them.
[[nodiscard]] Dataset load_labeled(const std::string& path, const LoadOptions& options, DataReport* report);

/// Reads a folder holding one folder per class (DIR/<label>/**/*.png|jpg|jpeg, sorted): image paths
/// relative to `dir` (base_dir = dir), no text. Only options.allowed_labels applies; files with
/// another extension are counted under dropped["not_an_image"]. load_labeled calls it for a folder.
/// Throws DataError for a folder without class folders or images.
[[nodiscard]] Dataset load_image_folder(const std::string& dir, const LoadOptions& options, DataReport* report);

/// Reads a pair of IDX files (MNIST / Fashion-MNIST layout: images with magic 0x803, labels with
/// magic 0x801, both uncompressed): one example per image, held as PNG bytes (8-bit gray), label =
/// the label byte in decimal. Only options.allowed_labels applies. Throws DataError naming the file
/// and the fix for a gzip'd, truncated or mismatched file (see convert_idx), IoError for a missing one.
[[nodiscard]] Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                               const LoadOptions& options, DataReport* report);

/// Whether `path` is a file starting with the magic number of IDX images (0x00000803).
[[nodiscard]] bool is_idx_images_file(const std::string& path);

/// Writes a CSV (RFC 4180 quoting, "\n" line ends) for rows `indices` of `ds`, with the columns
/// the data set has: `text,label`, `text,image,label` or `image,label`. Image paths: absolute ones
/// are written as they are; relative ones (relative to `ds.base_dir`) are written as stored when
/// `csv_dir` is not given, else rewritten relative to `csv_dir`, the folder the CSV will be in
/// (lexically, after making both absolute against the current directory; absolute when no relative
/// path exists). Throws Error for an image held as bytes (a CSV holds paths only).
[[nodiscard]] std::string to_csv(const Dataset& ds, const std::vector<std::size_t>& indices,
                                 const std::optional<std::string>& csv_dir = std::nullopt);

/// The same CSV as to_csv, streamed into `out` a row at a time (the caller commits `out`).
void write_csv(core::AtomicFile& out, const Dataset& ds, const std::vector<std::size_t>& indices,
               const std::optional<std::string>& csv_dir = std::nullopt);

}  // namespace kiln::data
