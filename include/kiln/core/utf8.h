// UTF-8 validation and repair.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::core {

/// Byte offset of the first byte that does not start a valid UTF-8 sequence (overlongs, surrogates
/// and code points above U+10FFFF are invalid), or std::string_view::npos if `s` is valid.
[[nodiscard]] std::size_t find_invalid_utf8(std::string_view s);

/// Copy of `s` with each maximal invalid subsequence replaced by U+FFFD (as Python's
/// `errors="replace"` does).
[[nodiscard]] std::string replace_invalid_utf8(std::string_view s);

/// Decodes one code point starting at s[i]; advances i. Precondition: `s` is valid UTF-8.
[[nodiscard]] char32_t decode_utf8(std::string_view s, std::size_t& i);

/// Appends the UTF-8 encoding of `cp` to `out`.
void append_utf8(std::string& out, char32_t cp);

/// Number of code points in valid UTF-8 `s`.
[[nodiscard]] std::size_t utf8_length(std::string_view s);

}  // namespace kiln::core
