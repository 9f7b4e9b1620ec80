// Streaming readers for tabular text data: CSV and TSV (RFC 4180), JSONL, and a JSON array of objects.
// Memory is proportional to one record, not to the file.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln::data {

/// Persisted in configs by name ("csv", "tsv", "jsonl", "json"); kAuto picks by file extension.
enum class Format { kAuto, kCsv, kTsv, kJsonl, kJson };

/// Parses "auto|csv|tsv|jsonl|json"; throws ConfigError naming the value and the choices.
[[nodiscard]] Format parse_format(const std::string& name);
[[nodiscard]] std::string format_name(Format f);

/// What to do with a field that is not valid UTF-8.
enum class BadUtf8Policy { kError, kReplace, kSkip };
[[nodiscard]] BadUtf8Policy parse_bad_utf8_policy(const std::string& name);

struct ReaderOptions {
  /// File format; default: from the extension (.csv, .tsv/.tab, .jsonl/.ndjson, .json).
  Format format = Format::kAuto;
  /// Invalid UTF-8 in a wanted field: error (default, names row and byte offset), replace with
  /// U+FFFD, or skip the row (counted by the reader, see RecordReader::skipped_bad_utf8()).
  BadUtf8Policy on_bad_utf8 = BadUtf8Policy::kError;
};

/// One record's wanted fields, in the order the columns were asked for.
struct Record {
  /// std::nullopt when the field is absent (JSON key missing or null); CSV fields are never absent.
  std::vector<std::optional<std::string>> fields;
  /// 1-based physical line where the record starts.
  std::int64_t line = 0;
  /// 1-based data record number (header excluded).
  std::int64_t row = 0;
};

class RecordReader {
 public:
  virtual ~RecordReader() = default;
  /// Reads the next record into `out`; returns false at end of input. Throws DataError naming
  /// file:line:column and a fix for malformed input.
  virtual bool next(Record& out) = 0;
  /// Rows skipped so far because of invalid UTF-8 (BadUtf8Policy::kSkip).
  [[nodiscard]] virtual std::int64_t skipped_bad_utf8() const = 0;
};

/// Opens `path` ("-" = standard input) and selects the columns named in `wanted`. For CSV/TSV the
/// header must contain each wanted column (else DataError listing the columns found). For JSON/JSONL
/// a key that occurs in no object is reported once the input is exhausted. Throws IoError for a
/// missing file or directory, DataError for an empty file. The file is read in chunks: memory is one
/// buffer plus the wanted fields of one record.
[[nodiscard]] std::unique_ptr<RecordReader> open_records(const std::string& path, const ReaderOptions& options,
                                                         const std::vector<std::string>& wanted);

/// As open_records, over an open stream; `name` is used in messages (a path or "<stdin>"). With
/// Format::kAuto the format comes from `name`'s extension, or, when it has none of the known ones,
/// from the content (first byte '[' → json, '{' → jsonl, a first line with tabs and no commas → tsv,
/// else csv).
[[nodiscard]] std::unique_ptr<RecordReader> open_records_from_stream(std::unique_ptr<std::istream> in,
                                                                     const std::string& name,
                                                                     const ReaderOptions& options,
                                                                     const std::vector<std::string>& wanted);

/// Convenience: every value of one column (absent values become "").
[[nodiscard]] std::vector<std::string> read_column(const std::string& path, const ReaderOptions& options,
                                                   const std::string& column);

}  // namespace kiln::data
