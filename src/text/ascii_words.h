// Private: the word-unigram analyzer (token pattern `(?u)\b\w\w+\b`, optional str.lower()) for a
// document that is all ASCII, in two cheap passes: one over 64-byte blocks that lowercases, checks
// for bytes >= 0x80 and builds a bit mask of word characters (SSE2 where available), then one over
// the masks that finds the runs of 2+ word characters with bit scans. Other documents go to
// Analyzer::analyze; on ASCII text both give the same tokens in the same order.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "byte_class.h"

namespace kiln::text::detail {

class AsciiWords {
 public:
  /// Prepares `doc`; false (and nothing to iterate) if it holds a byte >= 0x80.
  bool scan(std::string_view doc, bool lowercase) {
    const std::size_t n = doc.size();
    const std::size_t blocks = n / 64 + 1;  // the zero padding ends a word that ends the text
    if (text_.size() < kFront + blocks * 64 + 8) text_.resize(kFront + blocks * 64 + 8);
    masks_.resize(blocks);
    char* t = text_.data() + kFront;
    std::memcpy(t, doc.data(), n);
    std::memset(t + n, 0, blocks * 64 - n);
    const bool ascii = lowercase ? masks<true>(t, blocks) : masks<false>(t, blocks);
    return ascii;
  }

  /// Where for_each_run stopped: between two blocks, maybe inside a word.
  struct Cursor {
    std::size_t block = 0;
    std::uint64_t carry = 0;  ///< 1 if the previous block ended inside a word
    std::size_t start = 0;    ///< where that word started
    bool in_word = false;
  };
  /// Number of 64-byte blocks of the last scanned document.
  [[nodiscard]] std::size_t blocks() const { return masks_.size(); }

  /// Calls fn(p, n) for each run of word characters (n >= 1 bytes at p; tokens are the runs with
  /// n >= 2, which the caller selects) that ends in blocks [at.block, block_end) of the last
  /// scanned document, in order, and advances `at`. The bytes are in this object, valid until the
  /// next scan, and the 8 bytes before p and the 8 bytes from p may always be read.
  template <typename Fn>
  void for_each_run(Cursor& at, std::size_t block_end, Fn&& fn) const {
    const char* t = text_.data() + kFront;
    std::uint64_t carry = at.carry;
    std::size_t start = at.start;
    bool in_word = at.in_word;
    for (std::size_t b = at.block; b < block_end; ++b) {
      const std::uint64_t w = masks_[b];
      const std::uint64_t before = (w << 1) | carry;  // bit i: byte i - 1 is a word character
      std::uint64_t starts = w & ~before;
      std::uint64_t ends = ~w & before;
      carry = w >> 63;
      const std::size_t base = b * 64;
      while (true) {
        if (!in_word) {
          if (starts == 0) break;
          start = base + static_cast<std::size_t>(__builtin_ctzll(starts));
          starts &= starts - 1;
          in_word = true;
        }
        if (ends == 0) break;
        const std::size_t end = base + static_cast<std::size_t>(__builtin_ctzll(ends));
        ends &= ends - 1;
        in_word = false;
        fn(t + start, end - start);
      }
    }
    at = Cursor{block_end, carry, start, in_word};
  }
  /// All runs of the last scanned document.
  template <typename Fn>
  void for_each_run(Fn&& fn) const {
    Cursor at;
    for_each_run(at, masks_.size(), fn);
  }

 private:
  /// Lowercases (if Lower) the zero-padded blocks in place, stores their word masks; true if
  /// every byte is ASCII.
  template <bool Lower>
  bool masks(char* t, std::size_t blocks) {
#if defined(__SSE2__)
    const __m128i at = _mm_set1_epi8('@'), open_bracket = _mm_set1_epi8('[');
    const __m128i backtick = _mm_set1_epi8('`'), open_brace = _mm_set1_epi8('{');
    const __m128i slash = _mm_set1_epi8('/'), colon = _mm_set1_epi8(':');
    const __m128i underscore = _mm_set1_epi8('_'), case_bit = _mm_set1_epi8(0x20);
    __m128i high = _mm_setzero_si128();
    for (std::size_t b = 0; b < blocks; ++b) {
      std::uint64_t mask = 0;
      for (int q = 0; q < 4; ++q) {
        auto* p = reinterpret_cast<__m128i*>(t + b * 64 + q * 16);
        __m128i x = _mm_loadu_si128(p);
        high = _mm_or_si128(high, x);
        // Signed compares: bytes >= 0x80 are negative, so never word characters (and rejected).
        const __m128i folded = _mm_or_si128(x, case_bit);  // A-Z and a-z both land on a-z
        const __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(folded, backtick), _mm_cmplt_epi8(folded, open_brace));
        const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, slash), _mm_cmplt_epi8(x, colon));
        const __m128i word = _mm_or_si128(_mm_or_si128(letter, digit), _mm_cmpeq_epi8(x, underscore));
        if (Lower) {
          const __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(x, at), _mm_cmplt_epi8(x, open_bracket));
          x = _mm_or_si128(x, _mm_and_si128(upper, case_bit));
          _mm_storeu_si128(p, x);
        }
        mask |= static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm_movemask_epi8(word))) << (q * 16);
      }
      masks_[b] = mask;
    }
    return _mm_movemask_epi8(high) == 0;
#else
    unsigned char high = 0;
    auto* u = reinterpret_cast<unsigned char*>(t);
    for (std::size_t b = 0; b < blocks; ++b) {
      std::uint64_t mask = 0;
      for (std::size_t i = 0; i < 64; ++i) {
        unsigned char c = u[b * 64 + i];
        high |= c;
        if (Lower && c >= 'A' && c <= 'Z') u[b * 64 + i] = c = static_cast<unsigned char>(c + 32);
        mask |= static_cast<std::uint64_t>(kByteClasses[c] == kWord) << i;
      }
      masks_[b] = mask;
    }
    return high < 0x80;
#endif
  }

  static constexpr std::size_t kFront = 8;  ///< zero bytes before the document
  std::string text_;  ///< kFront zero bytes, then the document, lowercased, zero-padded to whole blocks
  std::vector<std::uint64_t> masks_;  ///< per 64-byte block, bit i: byte i is a word character
};

}  // namespace kiln::text::detail
