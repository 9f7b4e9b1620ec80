// Python 3.11-compatible character classes and lowercasing, the ones scikit-learn's text
// vectorizers rely on (`str.lower()`, re's `\w` and `\s`, `str.split()`). The tables are generated
// from /usr/bin/python3 by tests/golden/make_unicode_tables.py, so results do not depend on the
// Unicode version of utf8proc or the C library.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::text {

/// is_word_char for any code point (table lookup); is_word_char inlines the ASCII range.
[[nodiscard]] bool is_word_char_slow(char32_t c);

/// Python re's `\w` for str patterns: `c.isalnum() or c == '_'` (letters L*, digits and numerics
/// N*; combining marks Mn/Mc are not word characters).
[[nodiscard]] inline bool is_word_char(char32_t c) {
  if (c < 0x80) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  return is_word_char_slow(c);
}

/// is_space_char for any code point (table lookup); is_space_char inlines the ASCII range.
[[nodiscard]] bool is_space_char_slow(char32_t c);

/// Python's `c.isspace()`, which is also re's `\s` and what `str.split()` splits on.
[[nodiscard]] inline bool is_space_char(char32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  return is_space_char_slow(c);
}

/// Han ideographs, Hiragana, Katakana and Hangul (syllables and jamo), the scripts the `cjk`
/// analyzer option splits into character bigrams.
[[nodiscard]] bool is_cjk_char(char32_t c);

/// Writes Python's `s.lower()` into `out` (replacing its content): full case mapping, so U+0130
/// becomes "i\u0307" and U+03A3 becomes final sigma U+03C2 in Python's Final_Sigma context.
/// Precondition: `s` is valid UTF-8 (invalid bytes are copied through unchanged).
void python_lower(std::string_view s, std::string& out);
[[nodiscard]] std::string python_lower(std::string_view s);

/// Decodes the code point at s[i] and advances i. Never reads past s.size(); an invalid byte
/// decodes as itself (a value in 0x80..0xFF) and advances by one. Precondition: i < s.size().
inline char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char b0 = p[i];
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  const int len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
  if (len == 0 || b0 > 0xF4 || i + len > s.size()) {
    ++i;
    return b0;
  }
  char32_t c = b0 & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    const unsigned char b = p[i + k];
    if ((b & 0xC0) != 0x80) {
      ++i;
      return b0;
    }
    c = (c << 6) | (b & 0x3F);
  }
  i += len;
  return c;
}

}  // namespace kiln::text
