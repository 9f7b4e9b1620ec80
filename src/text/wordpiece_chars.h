// Character classes and mappings of Hugging Face tokenizers' BertNormalizer and BertPreTokenizer,
// generated from the reference (wordpiece_tables.inc, tests/golden/make_wordpiece_tables.js).
// Thread-safe: the lookup table is built once, on first use.
#pragma once

#include <cstdint>
#include <string_view>

namespace kiln::text::wordpiece_chars {

enum Flag : std::uint8_t {
  kRemoved = 1,      ///< clean_text removes it (controls, U+0000, U+FFFD)
  kCleanSpace = 2,   ///< clean_text turns it into ' '
  kSplitSpace = 4,   ///< BertPreTokenizer splits on it and drops it
  kPunct = 8,        ///< BertPreTokenizer isolates it
  kChinese = 16,     ///< handle_chinese_chars pads it with spaces
  kHasStrip = 32,    ///< strip_accents changes it (see strip())
  kHasLower = 64,    ///< lowercase changes it (see lower())
};

/// Flags of code point `cp` (0 for most letters).
[[nodiscard]] std::uint8_t flags(char32_t cp);

/// strip_accents of `cp` (NFD without nonspacing marks), UTF-8; only when flags(cp) & kHasStrip.
/// Hangul syllables are decomposed into `buf` (at least 12 bytes).
[[nodiscard]] std::string_view strip(char32_t cp, char* buf);
/// lowercase of `cp`, UTF-8; only when flags(cp) & kHasLower.
[[nodiscard]] std::string_view lower(char32_t cp);

}  // namespace kiln::text::wordpiece_chars
