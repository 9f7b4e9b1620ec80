// A labelled text dataset, loaded and cleaned, with a report of what was dropped and why.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/data/reader.h"

namespace kiln::data {

/// Parallel vectors: texts[i] has labels[i].
struct Dataset {
  std::vector<std::string> texts;
  std::vector<std::string> labels;
  [[nodiscard]] std::size_t size() const { return texts.size(); }
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
