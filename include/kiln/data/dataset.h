// Examples (text, image, label) and labelled data sets, loaded and cleaned, with a report of what was dropped and why.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/data/reader.h"

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
  /// Column holding the text. Default "text".
  std::string text_col = "text";
  /// Column holding the label. Default "label".
  std::string label_col = "label";
  /// Keep only rows whose label is one of these; empty = keep every label.
  std::vector<std::string> allowed_labels;
  /// Drop exact duplicate texts (the first occurrence is kept). Default false.
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
  /// Reason → rows dropped: "missing_text", "missing_label", "label_not_allowed", "duplicate",
  /// "bad_utf8". Every reason appears, with 0 when nothing was dropped for it.
  std::map<std::string, std::int64_t> dropped;
  std::map<std::string, std::int64_t> class_counts_before;
  std::map<std::string, std::int64_t> class_counts_after;
  /// Largest class count / smallest class count after cleaning.
  double imbalance_ratio = 0;
  LengthStats text_length;
  /// Split sizes and per-class counts per split, filled by the prepare stage.
  nlohmann::json splits = nlohmann::json::object();
};

[[nodiscard]] nlohmann::json to_json(const DataReport& report);

/// Reads and cleans `path`: drops rows whose text or label is missing, empty or whitespace-only,
/// rows whose label is not allowed, and (with dedupe) duplicate texts. Throws DataError if every row
/// is dropped, naming the filter that dropped them.
[[nodiscard]] Dataset load_labeled(const std::string& path, const LoadOptions& options, DataReport* report);

/// Writes a `text,label` CSV (RFC 4180 quoting, "\n" line ends) for rows `indices` of `ds`.
[[nodiscard]] std::string to_csv(const Dataset& ds, const std::vector<std::size_t>& indices);

}  // namespace kiln::data
