// Shared part of the record readers: applies the invalid-UTF-8 policy to each record's wanted fields.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/data/reader.h"

namespace kiln::data::detail {

/// Where a wanted field's value starts in the input.
struct FieldPos {
  std::int64_t line = 0, column = 0;
  /// Absolute byte offset of the value's first byte; -1 if unknown.
  std::int64_t offset = -1;
  /// True when value byte i sits at file byte offset + i (no quotes doubled, no escapes decoded).
  bool verbatim = false;
};

class ReaderBase : public RecordReader {
 public:
  bool next(Record& out) final;
  [[nodiscard]] std::int64_t skipped_bad_utf8() const final { return skipped_bad_utf8_; }

 protected:
  ReaderBase(std::string name, const ReaderOptions& options, std::vector<std::string> wanted);
  /// Reads the next record's wanted fields into out.fields (size wanted_.size()) and their positions
  /// into field_pos_; sets out.line and out.row. Returns false at end of input.
  virtual bool next_raw(Record& out) = 0;

  std::string name_;
  ReaderOptions options_;
  std::vector<std::string> wanted_;
  std::vector<FieldPos> field_pos_;

 private:
  std::int64_t skipped_bad_utf8_ = 0;
};

}  // namespace kiln::data::detail
