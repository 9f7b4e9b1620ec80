#include "kiln/core/utf8.h"

#include <gtest/gtest.h>

using kiln::core::find_invalid_utf8;
using kiln::core::replace_invalid_utf8;

TEST(Utf8, ValidStringsHaveNoInvalidByte) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xE4\xB8\xAD\xF0\x9F\x98\x80"), std::string_view::npos);
}

TEST(Utf8, FindsFirstInvalidByte) {
  EXPECT_EQ(find_invalid_utf8("ab\xFF" "cd"), 2u);
  EXPECT_EQ(find_invalid_utf8("x\xC0\xAF"), 1u);        // overlong
  EXPECT_EQ(find_invalid_utf8("xy\xED\xA0\x80"), 2u);   // surrogate
  EXPECT_EQ(find_invalid_utf8("\xE4\xB8"), 0u);         // truncated
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u); // > U+10FFFF
}

TEST(Utf8, ReplacesLikePython) {
  // b"a\xe4\xb8b".decode("utf-8", "replace") == "a\ufffdb"
  EXPECT_EQ(replace_invalid_utf8("a\xE4\xB8" "b"), "a\xEF\xBF\xBD" "b");
  // b"\xff\xfe".decode(..., "replace") == "\ufffd\ufffd"
  EXPECT_EQ(replace_invalid_utf8("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  // b"\xed\xa0\x80".decode(..., "replace") == "\ufffd\ufffd\ufffd"
  EXPECT_EQ(replace_invalid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

// Long inputs take the 16-bytes-at-a-time ASCII path: every position of an invalid byte, valid and
// truncated sequences straddling the block boundaries.
TEST(Utf8, FindsInvalidBytesAtEveryPositionOfLongText) {
  for (std::size_t n : {15u, 16u, 17u, 31u, 32u, 33u, 64u}) {
    for (std::size_t bad = 0; bad < n; ++bad) {
      std::string s(n, 'a');
      s[bad] = '\xFF';
      EXPECT_EQ(find_invalid_utf8(s), bad) << n << " " << bad;
      for (std::size_t good = 0; good + 2 <= bad; ++good) {  // a valid "é" before the bad byte
        std::string t = s;
        t[good] = '\xC3';
        t[good + 1] = '\xA9';
        EXPECT_EQ(find_invalid_utf8(t), bad) << n << " " << good << " " << bad;
      }
    }
    for (std::size_t at = 0; at + 3 <= n; ++at) {  // a valid CJK character anywhere: no invalid byte
      std::string s(n, 'a');
      s.replace(at, 3, "\xE4\xB8\xAD");
      EXPECT_EQ(find_invalid_utf8(s), std::string_view::npos) << n << " " << at;
    }
    std::string truncated = std::string(n, 'a') + "\xE4\xB8";
    EXPECT_EQ(find_invalid_utf8(truncated), n);
  }
}
