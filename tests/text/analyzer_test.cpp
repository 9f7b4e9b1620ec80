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
