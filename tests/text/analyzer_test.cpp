#include "kiln/text/analyzer.h"

#include <gtest/gtest.h>

#include "golden_util.h"
#include "kiln/core/error.h"

namespace kiln::text {
namespace {

TEST(Tokenizer, MatchesScikitLearnBuildAnalyzer) {
  const auto golden = testing::load_golden("analyzers.json");
  const auto docs = golden["docs"].get<std::vector<std::string>>();
  for (const auto& c : golden["cases"]) {
    AnalyzerOptions o;
    o.analyzer = parse_analyzer(c["analyzer"].get<std::string>());
    o.ngram_min = c["ngram_range"][0].get<int>();
    o.ngram_max = c["ngram_range"][1].get<int>();
    Analyzer a(o);
    for (std::size_t d = 0; d < docs.size(); ++d) {
      EXPECT_EQ(a.analyze(docs[d]), c["terms"][d].get<std::vector<std::string>>())
          << c["analyzer"] << " " << c["ngram_range"] << " doc " << d << ": " << docs[d];
    }
  }
}

// The ASCII fast paths (byte tables, 8-byte lowercasing) against scikit-learn on documents that
// switch between them and the general path at every position (tests/golden/make_tfidf_golden.py).
TEST(Tokenizer, FastPathsMatchScikitLearnOnMixedScripts) {
  const auto golden = testing::load_golden("analyzers_mixed.json");
  const auto docs = golden["docs"].get<std::vector<std::string>>();
  ASSERT_GT(docs.size(), 100u);
  for (const auto& c : golden["cases"]) {
    AnalyzerOptions o;
    o.analyzer = parse_analyzer(c["analyzer"].get<std::string>());
    o.ngram_min = c["ngram_range"][0].get<int>();
    o.ngram_max = c["ngram_range"][1].get<int>();
    o.lowercase = c["lowercase"].get<bool>();
    Analyzer a(o);
    AnalyzerScratch scratch;  // reused, as the vectorizers do
    std::vector<std::string_view> terms;
    for (std::size_t d = 0; d < docs.size(); ++d) {
      a.analyze(docs[d], scratch, terms);
      EXPECT_EQ(std::vector<std::string>(terms.begin(), terms.end()), c["terms"][d].get<std::vector<std::string>>())
          << c["analyzer"] << " " << c["ngram_range"] << " lowercase " << c["lowercase"] << " doc " << d << ": "
          << docs[d];
    }
  }
}

TEST(Tokenizer, AsciiAndGeneralPathsAgreeAroundMultibyteText) {
  // The same ASCII text analyzed alone and next to multibyte characters (which send the scan to
  // the decoding path) gives the same terms for the ASCII part.
  Analyzer word(AnalyzerOptions{});
  EXPECT_EQ(word.analyze("Hello WORLD_2 x ab"), (std::vector<std::string>{"hello", "world_2", "ab"}));
  EXPECT_EQ(word.analyze("Hello WORLD_2 x ab \u00e9t\u00e9"),
            (std::vector<std::string>{"hello", "world_2", "ab", "\u00e9t\u00e9"}));
  EXPECT_EQ(word.analyze("\u00e9Hello\u0301WORLD_2\u3000x ab"),
            (std::vector<std::string>{"\u00e9hello", "world_2", "ab"}));  // U+0301 is not \w; U+3000 is space
  EXPECT_EQ(word.analyze("\u0130XY \u1E9EAB \u212AM"),  // lowercase grows, shrinks, leaves ASCII
            (std::vector<std::string>{"xy", "\u00dfab", "km"}));  // U+0130 -> "i" + U+0307 (not \w)
  AnalyzerOptions wb;
  wb.analyzer = AnalyzerKind::kCharWb;
  wb.ngram_min = 2;
  wb.ngram_max = 3;
  EXPECT_EQ(Analyzer(wb).analyze("Ab\u00a0c\u3000\u3000D\u00e9"),
            (std::vector<std::string>{" a", "ab", "b ", " ab", "ab ", " c", "c ", " c ", " d", "d\u00e9", "\u00e9 ",
                                      " d\u00e9", "d\u00e9 "}));
  AnalyzerOptions ch;
  ch.analyzer = AnalyzerKind::kChar;
  ch.ngram_min = 2;
  ch.ngram_max = 2;
  EXPECT_EQ(Analyzer(ch).analyze("a\t b\u00a0\u00a0c\u0085d"),
            (std::vector<std::string>{"a ", " b", "b ", " c", "c\u0085", "\u0085d"}));
}

TEST(Tokenizer, CjkOptionLeavesOtherScriptsAlone) {
  AnalyzerOptions plain;
  AnalyzerOptions cjk;
  cjk.cjk = true;
  const auto golden = testing::load_golden("analyzers_mixed.json");
  Analyzer a(plain), b(cjk);
  for (const auto& doc : golden["docs"]) {
    const std::string d = doc.get<std::string>();
    if (d.find("\u5317") != std::string::npos || d.find("\u6771") != std::string::npos ||
        d.find("\ud55c") != std::string::npos) {
      continue;  // has CJK
    }
    EXPECT_EQ(a.analyze(d), b.analyze(d)) << d;
  }
  EXPECT_EQ(b.analyze("ABC\u5317\u4eacX_1 \u00c9t\u00e9\u6771 \u0130\u4eac"),
            (std::vector<std::string>{"abc", "\u5317\u4eac", "x_1", "\u00e9t\u00e9", "\u6771", "\u4eac"}));
}

TEST(Tokenizer, CombiningMarksSplitWordsAsPythonDoes) {
  Analyzer a(AnalyzerOptions{});
  EXPECT_EQ(a.analyze("नमस्ते"), (std::vector<std::string>{"नमस"}));  // "त" is a single character
}

TEST(Tokenizer, CjkBigramsSplitIdeographRuns) {
  AnalyzerOptions o;
  o.cjk = true;
  Analyzer a(o);
  EXPECT_EQ(a.analyze("我爱北京 abc天 x中y 东京タワー 한국어"),
            (std::vector<std::string>{"我爱", "爱北", "北京", "abc", "天", "中", "东京", "京タ", "タワ", "ワー", "한국",
                                      "국어"}));
}

TEST(Tokenizer, CjkNeedsWordAnalyzer) {
  AnalyzerOptions o;
  o.cjk = true;
  o.analyzer = AnalyzerKind::kChar;
  try {
    Analyzer a(o);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "analyzer.cjk applies to the word analyzer only, got analyzer=char; drop cjk or use analyzer=word");
  }
}

// fastText's tokens (its documented preprocessing, tests/golden/make_fasttext_tokens_golden.py):
// whitespace of every kind Python's str.split() knows, . ! ? , ' / ( ) as tokens of their own,
// 1-character words and other punctuation kept; unigrams, and unigrams then bigrams.
TEST(Tokenizer, FasttextTokensMatchFasttextPreprocessing) {
  const auto golden = testing::load_golden("fasttext_tokens.json");
  AnalyzerOptions words;
  words.fasttext_tokens = true;
  AnalyzerOptions bigrams = words;
  bigrams.ngram_max = 2;
  const Analyzer a(words), b(bigrams);
  for (const auto& c : golden["cases"]) {
    const auto doc = c["doc"].get<std::string>();
    EXPECT_EQ(a.analyze(doc), c["tokens"].get<std::vector<std::string>>()) << doc;
    EXPECT_EQ(b.analyze(doc), c["terms_1_2"].get<std::vector<std::string>>()) << doc;
  }
}

TEST(Tokenizer, FasttextTokensWithCjkSplitIdeographRunsInsideTokens) {
  AnalyzerOptions o;
  o.fasttext_tokens = true;
  o.cjk = true;
  Analyzer a(o);
  EXPECT_EQ(a.analyze("我爱北京, abc天 x中y. 东京タワー a"),
            (std::vector<std::string>{"我爱", "爱北", "北京", ",", "abc", "天", "x", "中", "y", ".", "东京", "京タ", "タワ",
                                      "ワー", "a"}));
  o.cjk = false;
  Analyzer plain(o);
  EXPECT_EQ(plain.analyze("我爱北京, abc天"), (std::vector<std::string>{"我爱北京", ",", "abc天"}));
}

TEST(Tokenizer, FasttextTokensNeedWordAnalyzer) {
  AnalyzerOptions o;
  o.fasttext_tokens = true;
  o.analyzer = AnalyzerKind::kCharWb;
  try {
    Analyzer a(o);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "analyzer.fastText tokens apply to the word analyzer only, got analyzer=char_wb; use analyzer=word");
  }
}

TEST(Tokenizer, RejectsBadNgramRange) {
  AnalyzerOptions o;
  o.ngram_min = 3;
  o.ngram_max = 2;
  try {
    Analyzer a(o);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "analyzer.ngram_range must be (min, max) with 1 <= min <= max, got (3, 2)");
  }
}

TEST(Tokenizer, ParseAnalyzerNamesChoices) {
  EXPECT_EQ(parse_analyzer("char_wb"), AnalyzerKind::kCharWb);
  try {
    (void)parse_analyzer("words", "tfidf.analyzer");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "tfidf.analyzer must be one of word, char, char_wb, got 'words'");
  }
}

}  // namespace
}  // namespace kiln::text
