// Buffered byte input for the readers: one fixed-size buffer over a std::istream, with the absolute
// offset, line and line start of the read position kept for error messages. Not thread-safe.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::data::detail {

class ByteSource {
 public:
  /// `name` is used in messages. `buffer_size` bytes are read per refill (at least 16).
  ByteSource(std::unique_ptr<std::istream> in, std::string name, std::size_t buffer_size = 1 << 16);

  /// True if an unread byte is available (refilling the buffer if needed); false at end of input.
  /// Throws IoError if the stream fails.
  bool fill() { return pos_ < end_ || refill(); }
  /// Next byte (0..255) without consuming it, or -1 at end of input.
  int peek() { return fill() ? static_cast<unsigned char>(buf_[pos_]) : -1; }
  /// Consumes and returns the next byte, or -1 at end of input; a '\n' starts a new line.
  int get() {
    if (!fill()) return -1;
    char c = buf_[pos_++];
    if (c == '\n') new_line();
    return static_cast<unsigned char>(c);
  }

  /// Unread bytes in the buffer: [cur(), end()). Valid until the next fill()/refill.
  [[nodiscard]] const char* cur() const { return buf_.data() + pos_; }
  [[nodiscard]] const char* end() const { return buf_.data() + end_; }
  /// Consumes `n` buffered bytes that contain no '\n' (the caller has checked).
  void advance(std::size_t n) { pos_ += n; }
  /// Consumes one buffered '\n' and starts a new line.
  void advance_line() {
    ++pos_;
    new_line();
  }
  /// Consumes `n` buffered bytes that contain `lines` '\n's, the last of them at `last_newline`
  /// (ignored when lines == 0): the same as advance() and advance_line() byte by byte.
  void advance_lines(std::size_t n, std::int64_t lines, const char* last_newline) {
    pos_ += n;
    if (lines > 0) {
      line_ += lines;
      line_start_ = base_ + (last_newline - buf_.data()) + 1;
    }
  }
  /// Consumes one buffered '\r' and, if a '\n' follows, that too; either way a new line starts.
  void advance_cr() {
    ++pos_;
    if (fill() && buf_[pos_] == '\n') ++pos_;
    new_line();
  }

  /// Bytes of the whole input that are buffered but unread, starting at the read position; reads the
  /// first chunk if nothing has been read yet. For format sniffing at the start of input only.
  [[nodiscard]] std::string_view lookahead() {
    fill();
    return {buf_.data() + pos_, end_ - pos_};
  }

  /// Absolute byte offset (0-based) of the next unread byte.
  [[nodiscard]] std::int64_t offset() const { return base_ + static_cast<std::int64_t>(pos_); }
  /// 1-based line of the next unread byte.
  [[nodiscard]] std::int64_t line() const { return line_; }
  /// 1-based byte column of the next unread byte.
  [[nodiscard]] std::int64_t column() const { return offset() - line_start_ + 1; }
  [[nodiscard]] const std::string& name() const { return name_; }
  /// "name:line:column" of the next unread byte.
  [[nodiscard]] std::string where() const { return where(line(), column()); }
  [[nodiscard]] std::string where(std::int64_t line, std::int64_t column) const;

 private:
  bool refill();
  void new_line() {
    ++line_;
    line_start_ = offset();
  }

  std::unique_ptr<std::istream> in_;
  std::string name_;
  std::vector<char> buf_;
  std::size_t pos_ = 0, end_ = 0;
  std::int64_t base_ = 0;  // absolute offset of buf_[0]
  std::int64_t line_ = 1;
  std::int64_t line_start_ = 0;
  bool eof_ = false;
};

/// `s` shortened to at most `max` bytes (cut at a UTF-8 boundary, "..." appended) and with control
/// characters escaped, for quoting input in messages.
[[nodiscard]] std::string quote_for_message(std::string_view s, std::size_t max = 40);

}  // namespace kiln::data::detail
