// JSONL and JSON-array record readers: a pull parser over ByteSource that keeps only the wanted
// top-level keys of each object and skips everything else without building it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "byte_source.h"
#include "reader_base.h"

namespace kiln::data::detail {

/// Reads objects either one per line (JSONL; blank lines skipped; an object may not span lines) or as
/// the elements of one top-level array. Values of wanted keys: a string as is, a number as its literal
/// text ("1", "2.50"), true/false as "true"/"false", null or an absent key as std::nullopt; an object
/// or array is a DataError naming line, column and key. Duplicate keys: the last one wins. Syntax
/// errors are DataErrors with file:line:column. Nesting inside skipped values is limited to
/// kMaxDepth levels.
class JsonReader final : public ReaderBase {
 public:
  static constexpr std::size_t kMaxDepth = 10000;

  JsonReader(std::unique_ptr<ByteSource> src, bool lines, const ReaderOptions& options,
             std::vector<std::string> wanted);

 protected:
  bool next_raw(Record& out) override;

 private:
  void skip_ws(bool newlines);
  void parse_object(Record& out);
  void parse_wanted_value(std::size_t f, Record& out);
  void skip_value();
  void skip_scalar();
  /// Parses a string whose opening quote is next; appends to `out` unless null. Sets pos->verbatim
  /// to false if an escape was decoded.
  void parse_string(std::string* out, FieldPos* pos);
  void parse_number(std::string* out);
  void parse_literal(const char* word);
  [[noreturn]] void fail(const std::string& what, const std::string& hint = "");
  [[noreturn]] void unexpected(const std::string& expected);
  /// At end of input: DataError for a wanted key that occurred in no object.
  void check_keys_seen() const;

  std::unique_ptr<ByteSource> src_;
  bool lines_;
  bool array_open_ = false;  // inside the top-level array, an element may follow
  bool done_ = false;
  std::int64_t row_ = 0;
  std::vector<bool> seen_;
  std::vector<std::string> keys_found_;
  std::string key_;
  std::vector<char> stack_;
};

}  // namespace kiln::data::detail
