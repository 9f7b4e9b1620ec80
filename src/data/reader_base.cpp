#include "reader_base.h"

#include <cstdio>

#include "kiln/core/error.h"
#include "kiln/core/utf8.h"

namespace kiln::data::detail {

ReaderBase::ReaderBase(std::string name, const ReaderOptions& options, std::vector<std::string> wanted)
    : name_(std::move(name)), options_(options), wanted_(std::move(wanted)), field_pos_(wanted_.size()) {}

bool ReaderBase::next(Record& out) {
  for (;;) {
    if (!next_raw(out)) return false;
    bool skip = false;
    for (std::size_t f = 0; f < out.fields.size() && !skip; ++f) {
      if (!out.fields[f]) continue;
      std::string& value = *out.fields[f];
      std::size_t bad = core::find_invalid_utf8(value);
      if (bad == std::string::npos) continue;
      switch (options_.on_bad_utf8) {
        case BadUtf8Policy::kReplace:
          value = core::replace_invalid_utf8(value);
          break;
        case BadUtf8Policy::kSkip:
          skip = true;
          break;
        case BadUtf8Policy::kError: {
          const FieldPos& p = field_pos_[f];
          std::string msg = name_ + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) +
                            ": invalid UTF-8 in row " + std::to_string(out.row) + ", field '" + wanted_[f] +
                            "', at byte " + std::to_string(bad) + " of the value";
          if (p.verbatim && p.offset >= 0) {
            msg += " (byte offset " + std::to_string(p.offset + static_cast<std::int64_t>(bad)) + " in the file)";
          }
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(value[bad]));
          msg += ": byte " + std::string(hex) +
                 " does not start a valid UTF-8 sequence; re-encode the file as UTF-8 (e.g. iconv -f latin1 "
                 "-t utf-8), or set on_bad_utf8 (--on-bad-utf8) to 'replace' (U+FFFD) or 'skip' (drop the row)";
          throw DataError(msg);
        }
      }
    }
    if (!skip) return true;
    ++skipped_bad_utf8_;
  }
}

}  // namespace kiln::data::detail
