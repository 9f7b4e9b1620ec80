#include "csv_reader.h"

#include <algorithm>
#include <cctype>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kiln/core/error.h"

namespace kiln::data::detail {
namespace {

/// First p in [b, e) with *p equal to a, b2 or c, or e: 16 bytes a step where SSE2 is available
/// (every x86-64), a byte a step elsewhere and for the tail.
const char* find_any_of(const char* b, const char* e, char a, char b2, char c) {
#if defined(__SSE2__)
  const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b2), vc = _mm_set1_epi8(c);
  while (e - b >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb)), _mm_cmpeq_epi8(x, vc));
    const int mask = _mm_movemask_epi8(hit);
    if (mask != 0) return b + __builtin_ctz(static_cast<unsigned>(mask));
    b += 16;
  }
#endif
  while (b < e && *b != a && *b != b2 && *b != c) ++b;
  return b;
}

/// First '"' in [b, e), or e; adds the '\n's before it to `lines` and points `last_newline` at the
/// last of them (unchanged when there is none). 16 bytes a step where SSE2 is available.
const char* find_quote(const char* b, const char* e, std::int64_t& lines, const char*& last_newline) {
#if defined(__SSE2__)
  const __m128i vq = _mm_set1_epi8('"'), vn = _mm_set1_epi8('\n');
  while (e - b >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
    const auto quotes = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, vq)));
    auto newlines = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, vn)));
    if (quotes != 0) newlines &= (quotes & (0u - quotes)) - 1;  // only those before the quote
    if (newlines != 0) {
      last_newline = b + (31 - __builtin_clz(newlines));
      for (; newlines != 0; newlines &= newlines - 1) ++lines;  // one or two: cheaper than a popcount call
    }
    if (quotes != 0) return b + __builtin_ctz(quotes);
    b += 16;
  }
#endif
  for (; b < e && *b != '"'; ++b) {
    if (*b == '\n') {
      ++lines;
      last_newline = b;
    }
  }
  return b;
}

std::string delimiter_name(char d) { return d == '\t' ? "tab" : std::string("'") + d + "'"; }

std::string lower_trimmed(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  std::string out = s.substr(b, e - b);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string list_columns(const std::vector<std::string>& header) {
  std::string out;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (i) out += ", ";
    if (i == 20) {
      out += "... (" + std::to_string(header.size()) + " in all)";
      break;
    }
    out += quote_for_message(header[i]);
  }
  return out;
}

}  // namespace

CsvReader::CsvReader(std::unique_ptr<ByteSource> src, char delimiter, const ReaderOptions& options,
                     std::vector<std::string> wanted)
    : ReaderBase(src->name(), options, std::move(wanted)), src_(std::move(src)), delim_(delimiter) {
  std::string_view head = src_->lookahead();
  if (head.substr(0, 3) == "\xEF\xBB\xBF") src_->advance(3);
  if (read_row(nullptr, true) == 0) {
    throw DataError(name_ + ": empty file: no header row; the first line must name the columns (e.g. " +
                    std::string("text") + (delim_ == '\t' ? "\\t" : std::string(1, delim_)) +
                    "label), followed by one data row per line");
  }
  slot_of_column_.assign(header_.size(), -1);
  for (std::size_t f = 0; f < wanted_.size(); ++f) {
    std::vector<std::size_t> hits;
    for (std::size_t c = 0; c < header_.size(); ++c) {
      if (header_[c] == wanted_[f]) hits.push_back(c);
    }
    if (hits.empty()) {
      std::string msg = name_ + ":1: column " + quote_for_message(wanted_[f]) + " not found in the header; columns found: " +
                        list_columns(header_);
      for (const std::string& h : header_) {
        if (lower_trimmed(h) == lower_trimmed(wanted_[f])) {
          msg += "; did you mean " + quote_for_message(h) + "?";
          break;
        }
      }
      if (header_.size() == 1 && header_[0].find(delim_ == ',' ? '\t' : ',') != std::string::npos) {
        msg += "; the header has one column: is the delimiter " + delimiter_name(delim_ == ',' ? '\t' : ',') +
               "? (set the format: csv or tsv)";
      } else {
        msg += "; name one of these columns";
      }
      throw DataError(msg);
    }
    if (hits.size() > 1) {
      throw DataError(name_ + ":1: column " + quote_for_message(wanted_[f]) + " appears " + std::to_string(hits.size()) +
                      " times in the header (columns " + std::to_string(hits[0] + 1) + " and " +
                      std::to_string(hits[1] + 1) + "); rename the duplicates so the column is unambiguous");
    }
    slot_of_column_[hits[0]] = static_cast<int>(f);
  }
}

bool CsvReader::next_raw(Record& out) {
  out.fields.resize(wanted_.size());
  std::size_t n = read_row(&out, false);
  if (n == 0) return false;
  ++row_;
  out.row = row_;
  if (n != header_.size()) {
    std::string msg = src_->where(out.line, 1) + ": row " + std::to_string(row_) + " has " + std::to_string(n) +
                      (n == 1 ? " field" : " fields") + ", expected " + std::to_string(header_.size()) +
                      " (as in the header); ";
    if (n > header_.size()) {
      msg += "a field that contains the delimiter (" + delimiter_name(delim_) +
             ") must be enclosed in double quotes";
    } else {
      msg += "a field or a delimiter (" + delimiter_name(delim_) + ") is missing on this row";
    }
    throw DataError(msg);
  }
  return true;
}

std::size_t CsvReader::read_row(Record* out, bool header) {
  ByteSource& s = *src_;
  // Blank lines between rows are skipped.
  for (;;) {
    if (!s.fill()) return 0;
    char c = *s.cur();
    if (c == '\n') s.advance_line();
    else if (c == '\r') s.advance_cr();
    else break;
  }
  if (out) out->line = s.line();
  std::size_t col = 0;
  for (;;) {
    std::string* dst = nullptr;
    FieldPos* pos = nullptr;
    if (header) {
      header_.emplace_back();
      dst = &header_.back();
    } else if (col < slot_of_column_.size() && slot_of_column_[col] >= 0) {
      int slot = slot_of_column_[col];
      auto& field = out->fields[static_cast<std::size_t>(slot)];
      if (field) field->clear();
      else field.emplace();
      dst = &*field;
      pos = &field_pos_[static_cast<std::size_t>(slot)];
      pos->line = s.line();
      pos->column = s.column();
    }
    ++col;
    if (s.fill() && *s.cur() == '"') {
      const std::int64_t open_line = s.line(), open_col = s.column();
      s.advance(1);
      if (pos) {
        pos->offset = s.offset();
        pos->verbatim = true;
      }
      for (;;) {
        if (!s.fill()) {
          throw DataError(s.where() + ": unterminated quoted field (opened at " + std::to_string(open_line) + ":" +
                          std::to_string(open_col) + "); check for a stray '\"' or a missing closing quote " +
                          "(a quote inside a quoted field is written \"\")");
        }
        const char* b = s.cur();
        const char* e = s.end();
        std::int64_t lines = 0;
        const char* last_newline = nullptr;
        const char* p = find_quote(b, e, lines, last_newline);
        if (dst) dst->append(b, static_cast<std::size_t>(p - b));
        s.advance_lines(static_cast<std::size_t>(p - b), lines, last_newline);
        if (p == e) continue;
        s.advance(1);  // the '"'
        if (s.fill() && *s.cur() == '"') {
          if (dst) dst->push_back('"');
          if (pos) pos->verbatim = false;
          s.advance(1);
          continue;
        }
        break;
      }
      if (!s.fill()) return col;
      char c = *s.cur();
      if (c == delim_) {
        s.advance(1);
        continue;
      }
      if (c == '\n') {
        s.advance_line();
        return col;
      }
      if (c == '\r') {
        s.advance_cr();
        return col;
      }
      throw DataError(s.where() + ": unexpected " + quote_for_message(std::string(1, c)) +
                      " after the closing quote of the field opened at " + std::to_string(open_line) + ":" +
                      std::to_string(open_col) + "; a quote inside a quoted field must be doubled (\"\"), and " +
                      "a delimiter (" + delimiter_name(delim_) + ") or line end must follow the closing quote");
    }
    if (pos) {
      pos->offset = s.offset();
      pos->verbatim = true;
    }
    for (;;) {
      if (!s.fill()) return col;
      const char* b = s.cur();
      const char* e = s.end();
      const char d = delim_;
      const char* p = find_any_of(b, e, d, '\n', '\r');
      if (dst) dst->append(b, static_cast<std::size_t>(p - b));
      s.advance(static_cast<std::size_t>(p - b));
      if (p == e) continue;
      if (*p == d) {
        s.advance(1);
        break;
      }
      if (*p == '\n') s.advance_line();
      else s.advance_cr();
      return col;
    }
  }
}

}  // namespace kiln::data::detail
