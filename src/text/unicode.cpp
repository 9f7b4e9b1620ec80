#include "kiln/text/unicode.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "byte_class.h"

namespace kiln::text {
namespace {

struct CodeRange {
  char32_t first;
  char32_t last;
};
struct LowerPair {
  char32_t from;
  char32_t to;
};

#include "unicode_tables.inc"

constexpr char32_t kMaxCodePoint = 0x10FFFF;

template <std::size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t c) {
  const CodeRange* end = table + N;
  const CodeRange* it =
      std::upper_bound(table, end, c, [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != table && c <= (it - 1)->last;
}

/// One bit per code point, built once from a range table.
class Bitmap {
 public:
  template <std::size_t N>
  explicit Bitmap(const CodeRange (&table)[N]) : bits_((kMaxCodePoint + 64) / 64, 0) {
    for (const CodeRange& r : table) {
      for (char32_t c = r.first; c <= r.last; ++c) bits_[c >> 6] |= std::uint64_t{1} << (c & 63);
    }
  }
  bool test(char32_t c) const { return c <= kMaxCodePoint && ((bits_[c >> 6] >> (c & 63)) & 1U); }

 private:
  std::vector<std::uint64_t> bits_;
};

const Bitmap& word_bitmap() {
  static const Bitmap bitmap(kWordRanges);
  return bitmap;
}

bool is_case_ignorable(char32_t c) { return in_ranges(kCaseIgnorable, c); }
bool is_cased(char32_t c) { return in_ranges(kCasedRanges, c); }

char32_t lower_simple_search(char32_t c) {
  const LowerPair* end = kLowerPairs + std::size(kLowerPairs);
  const LowerPair* it =
      std::lower_bound(kLowerPairs, end, c, [](const LowerPair& p, char32_t v) { return p.from < v; });
  return (it != end && it->from == c) ? it->to : c;
}

/// Code points below this lower through a table (Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic).
constexpr char32_t kLowerTableSize = 0x800;

char32_t lower_simple(char32_t c) {
  static const std::vector<char32_t> table = [] {
    std::vector<char32_t> t(kLowerTableSize);
    for (char32_t k = 0; k < kLowerTableSize; ++k) t[k] = lower_simple_search(k);
    return t;
  }();
  return c < kLowerTableSize ? table[c] : lower_simple_search(c);
}

/// UTF-8 bytes of `c` (<= 0x10FFFF) into out; returns their count.
std::size_t encode_utf8(char32_t c, char* out) {
  if (c < 0x80) {
    out[0] = static_cast<char>(c);
    return 1;
  }
  if (c < 0x800) {
    out[0] = static_cast<char>(0xC0 | (c >> 6));
    out[1] = static_cast<char>(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (c >> 12));
    out[1] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (c >> 18));
  out[1] = static_cast<char>(0x80 | ((c >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (c & 0x3F));
  return 4;
}

/// Code point ending just before byte `i` (i > 0), moving i to its first byte.
char32_t prev_code_point(std::string_view s, std::size_t& i) {
  std::size_t start = i - 1;
  while (start > 0 && i - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  std::size_t j = start;
  char32_t c = next_code_point(s, j);
  if (j != i) {  // not a well-formed sequence ending at i: step one byte
    start = i - 1;
    c = static_cast<unsigned char>(s[start]);
  }
  i = start;
  return c;
}

/// Python's handle_capital_sigma: U+03A3 at bytes [begin, end) of s is final when preceded by a
/// cased letter and not followed by one, skipping case-ignorable characters on both sides.
bool is_final_sigma(std::string_view s, std::size_t begin, std::size_t end) {
  std::size_t i = begin;
  bool final_sigma = false;
  while (i > 0) {
    char32_t c = prev_code_point(s, i);
    if (!is_case_ignorable(c)) {
      final_sigma = is_cased(c);
      break;
    }
  }
  if (!final_sigma) return false;
  std::size_t j = end;
  while (j < s.size()) {
    char32_t c = next_code_point(s, j);
    if (!is_case_ignorable(c)) return !is_cased(c);
  }
  return true;
}

}  // namespace

bool is_word_char_slow(char32_t c) { return word_bitmap().test(c); }

bool is_space_char_slow(char32_t c) { return in_ranges(kSpaceRanges, c); }

bool is_cjk_char(char32_t c) {
  return (c >= 0x1100 && c <= 0x11FF) ||    // Hangul Jamo
         (c >= 0x2E80 && c <= 0x2FDF) ||    // CJK radicals, Kangxi radicals
         (c >= 0x3005 && c <= 0x3007) ||    // iteration mark, closing mark, ideographic zero
         (c >= 0x3021 && c <= 0x3029) ||    // Hangzhou numerals
         (c >= 0x3038 && c <= 0x303C) ||
         (c >= 0x3040 && c <= 0x30FF) ||    // Hiragana, Katakana
         (c >= 0x3130 && c <= 0x318F) ||    // Hangul compatibility jamo
         (c >= 0x31F0 && c <= 0x31FF) ||    // Katakana phonetic extensions
         (c >= 0x3400 && c <= 0x4DBF) ||    // CJK extension A
         (c >= 0x4E00 && c <= 0x9FFF) ||    // CJK unified ideographs
         (c >= 0xA960 && c <= 0xA97F) ||    // Hangul Jamo extended-A
         (c >= 0xAC00 && c <= 0xD7FF) ||    // Hangul syllables, Jamo extended-B
         (c >= 0xF900 && c <= 0xFAFF) ||    // CJK compatibility ideographs
         (c >= 0xFF66 && c <= 0xFFDC) ||    // halfwidth Katakana and Hangul
         (c >= 0x1B000 && c <= 0x1B16F) ||  // Kana supplement, extended-A, small kana
         (c >= 0x20000 && c <= 0x3134F);    // CJK extensions B..G, compatibility supplement
}

void python_lower(std::string_view s, std::string& out) {
  const std::size_t n = s.size();
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  // Invariant: out.size() - w >= n - i. ASCII writes one byte per byte read, so only the
  // multibyte path (which may grow: U+0130 and U+023A lower to 3 bytes from 2) has to check it.
  out.resize(n);
  std::size_t i = 0;
  std::size_t w = 0;
  while (i < n) {
    if (i + 8 <= n) {
      const std::uint64_t word = detail::load8(p + i);
      if ((word & detail::kHighBits) == 0) {
        const std::uint64_t lowered = detail::ascii_lower8(word);
        std::memcpy(out.data() + w, &lowered, 8);
        i += 8;
        w += 8;
        continue;
      }
    }
    const unsigned char b = p[i];
    if (b < 0x80) {
      out[w++] = static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
      ++i;
      continue;
    }
    const std::size_t begin = i;
    const char32_t c = next_code_point(s, i);
    char buf[4];
    std::size_t len = 0;
    if (i - begin == 1) {  // invalid byte: copy through
      buf[len++] = static_cast<char>(b);
    } else if (c == 0x130) {
      std::memcpy(buf, "i\xCC\x87", 3);  // i + U+0307 COMBINING DOT ABOVE
      len = 3;
    } else if (c == 0x3A3) {
      len = encode_utf8(is_final_sigma(s, begin, i) ? char32_t{0x3C2} : char32_t{0x3C3}, buf);
    } else if (const char32_t lower = lower_simple(c); lower != c && c >= 0x80) {
      len = encode_utf8(lower, buf);
    } else {  // unchanged, or an overlong form: copy through
      len = i - begin;
      std::memcpy(buf, p + begin, len);
    }
    if (out.size() - w < len + (n - i)) out.resize(w + len + (n - i) + n / 8 + 8);
    std::memcpy(out.data() + w, buf, len);
    w += len;
  }
  out.resize(w);
}

std::string python_lower(std::string_view s) {
  std::string out;
  python_lower(s, out);
  return out;
}

}  // namespace kiln::text
