// RFC 4180 CSV/TSV record reader: a state machine over ByteSource's buffer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "byte_source.h"
#include "reader_base.h"

namespace kiln::data::detail {

/// Reads a delimited file with a header row. Accepted: quoted fields with embedded delimiters, line
/// breaks and doubled quotes (""), CRLF / LF / lone CR line ends, a UTF-8 byte order mark, blank lines
/// (skipped), and a '"' inside an unquoted field (kept literally). Errors (DataError, with
/// file:line:column): no header, unterminated quoted field (with where it opened), text after a
/// closing quote, a row whose field count differs from the header's, a wanted column missing from the
/// header, a wanted column named twice in the header.
class CsvReader final : public ReaderBase {
 public:
  CsvReader(std::unique_ptr<ByteSource> src, char delimiter, const ReaderOptions& options,
            std::vector<std::string> wanted);

  /// Column names of the header row.
  [[nodiscard]] const std::vector<std::string>& header() const { return header_; }

 protected:
  bool next_raw(Record& out) override;

 private:
  /// Parses one row into the wanted slots (or every field into header_ when reading the header).
  /// Returns the number of fields, or 0 at end of input.
  std::size_t read_row(Record* out, bool header);

  std::unique_ptr<ByteSource> src_;
  char delim_;
  std::vector<std::string> header_;
  /// Column index → index into Record::fields, or -1 for columns not wanted.
  std::vector<int> slot_of_column_;
  std::int64_t row_ = 0;
};

}  // namespace kiln::data::detail
