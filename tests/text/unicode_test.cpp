#include "kiln/text/unicode.h"

#include <gtest/gtest.h>

#include "golden_util.h"

namespace kiln::text {
namespace {

TEST(Unicode, LowerMatchesPythonOnGoldenSamples) {
  const auto samples = testing::load_golden("lower.json");
  ASSERT_GT(samples.size(), 20u);
  for (const auto& pair : samples) {
    const std::string in = pair[0].get<std::string>();
    EXPECT_EQ(python_lower(in), pair[1].get<std::string>()) << "input: " << in;
  }
}

TEST(Unicode, LowerMatchesPythonOnMixedScripts) {
  const auto golden = testing::load_golden("analyzers_mixed.json");
  const auto docs = golden["docs"].get<std::vector<std::string>>();
  const auto lower = golden["lower"].get<std::vector<std::string>>();
  ASSERT_EQ(docs.size(), lower.size());
  std::string out = "stale content from an earlier call";
  for (std::size_t d = 0; d < docs.size(); ++d) {
    python_lower(docs[d], out);
    EXPECT_EQ(out, lower[d]) << "input: " << docs[d];
  }
}

TEST(Unicode, LowerEightByteBlocksAtEveryAlignment) {
  const std::string upper = "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG @[`{ 0123456789";
  const std::string lower = "the quick brown fox jumps over the lazy dog @[`{ 0123456789";
  for (std::size_t k = 0; k <= upper.size(); ++k) {
    EXPECT_EQ(python_lower(upper.substr(0, k) + "\xC4\xB0" + upper.substr(k)),
              lower.substr(0, k) + "i\xCC\x87" + lower.substr(k));
    EXPECT_EQ(python_lower(upper.substr(k)), lower.substr(k));
  }
}

TEST(Unicode, LowerChangesByteLengthAsPythonDoes) {
  EXPECT_EQ(python_lower("\u1E9E"), "\u00DF");          // 3 bytes -> 2
  EXPECT_EQ(python_lower("\u212A"), "k");               // KELVIN SIGN: 3 bytes -> 1
  EXPECT_EQ(python_lower("\u023A\u023A\u023A"), "\u2C65\u2C65\u2C65");  // 2 bytes -> 3 each
  EXPECT_EQ(python_lower(std::string(20, '\xC4') + "\xC4\xB0"), std::string(20, '\xC4') + "i\xCC\x87");
}

TEST(Unicode, DottedCapitalILowersToTwoCodePoints) {
  EXPECT_EQ(python_lower("\xC4\xB0"), "i\xCC\x87");
}

TEST(Unicode, FinalSigmaFollowsPythonContextRule) {
  EXPECT_EQ(python_lower("ΟΔΟΣ"), "οδος");
  EXPECT_EQ(python_lower("Σ"), "σ");          // no cased letter before
  EXPECT_EQ(python_lower("ΑΣΑ"), "ασα");      // cased letter after
  EXPECT_EQ(python_lower("ΑΣ."), "ας.");
}

TEST(Unicode, WordCharactersFollowPythonIsalnum) {
  EXPECT_TRUE(is_word_char(U'a'));
  EXPECT_TRUE(is_word_char(U'_'));
  EXPECT_TRUE(is_word_char(U'9'));
  EXPECT_TRUE(is_word_char(0x00B2));   // superscript two: isdigit
  EXPECT_TRUE(is_word_char(0x00BD));   // one half: isnumeric
  EXPECT_TRUE(is_word_char(0x216B));   // roman numeral twelve: Nl
  EXPECT_TRUE(is_word_char(0x0928));   // Devanagari NA
  EXPECT_FALSE(is_word_char(0x094D));  // Devanagari virama: Mn
  EXPECT_FALSE(is_word_char(0x0301));  // combining acute: Mn
  EXPECT_FALSE(is_word_char(0x1F600)); // emoji
  EXPECT_FALSE(is_word_char(U'-'));
  EXPECT_FALSE(is_word_char(0x110000));
}

TEST(Unicode, SpaceCharactersFollowPythonIsspace) {
  for (char32_t c : {U' ', U'\t', U'\n', U'\r', U'\v', U'\f', char32_t{0x1C}, char32_t{0x85}, char32_t{0xA0},
                     char32_t{0x2028}, char32_t{0x3000}}) {
    EXPECT_TRUE(is_space_char(c)) << std::hex << static_cast<unsigned>(c);
  }
  EXPECT_FALSE(is_space_char(0x200B));  // zero width space is not whitespace in Python
  EXPECT_FALSE(is_space_char(U'a'));
}

TEST(Unicode, InvalidBytesPassThroughLower) {
  EXPECT_EQ(python_lower(std::string("A\xFF" "B")), std::string("a\xFF" "b"));
  EXPECT_EQ(python_lower(std::string("\xC3")), std::string("\xC3"));
}

}  // namespace
}  // namespace kiln::text
