// term_spans: the word analyzer's terms with their places in the original text.
#include "kiln/text/term_spans.h"

#include <gtest/gtest.h>

#include "kiln/core/error.h"

namespace kiln::text {
namespace {

TEST(TermSpans, SameTermsAsAnalyzeWithSpansInTheOriginalText) {
  AnalyzerOptions o;
  o.ngram_max = 2;
  const Analyzer a(o);
  const std::string doc = "The CAT sat; the cat!";
  const auto spans = term_spans(a, doc);
  const auto terms = a.analyze(doc);
  ASSERT_EQ(spans.size(), terms.size());
  for (std::size_t i = 0; i < spans.size(); ++i) EXPECT_EQ(spans[i].term, terms[i]);
  EXPECT_EQ(spans[1].term, "cat");
  EXPECT_EQ(doc.substr(spans[1].begin, spans[1].end - spans[1].begin), "CAT");
  EXPECT_EQ(spans[5].term, "the cat");  // unigrams first, then bigrams, as analyze()
  EXPECT_EQ(doc.substr(spans[5].begin, spans[5].end - spans[5].begin), "The CAT");
  EXPECT_EQ(doc.substr(spans[8].begin, spans[8].end - spans[8].begin), "the cat");
}

// U+0130 lowercases to "i" + U+0307 (one byte longer): offsets after it still land in the original.
TEST(TermSpans, LowercaseThatChangesLengthMapsBack) {
  const Analyzer a(AnalyzerOptions{});
  const std::string doc = "\xC4\xB0stanbul and \xC4\xB0zmir";
  const auto spans = term_spans(a, doc);
  ASSERT_EQ(spans.size(), a.analyze(doc).size());
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(doc.substr(spans[0].begin, spans[0].end - spans[0].begin), "stanbul");
  EXPECT_EQ(doc.substr(spans[1].begin, spans[1].end - spans[1].begin), "and");
  EXPECT_EQ(doc.substr(spans[2].begin, spans[2].end - spans[2].begin), "zmir");
}

TEST(TermSpans, CjkBigramsHaveSpans) {
  AnalyzerOptions o;
  o.cjk = true;
  const Analyzer a(o);
  const std::string doc = "\xE4\xB8\xAD\xE6\x96\x87\xE5\xAD\x97 ok";  // 中文字 ok
  const auto spans = term_spans(a, doc);
  ASSERT_EQ(spans.size(), a.analyze(doc).size());
  ASSERT_GE(spans.size(), 3u);
  EXPECT_EQ(doc.substr(spans[0].begin, spans[0].end - spans[0].begin), "\xE4\xB8\xAD\xE6\x96\x87");
}

TEST(TermSpans, FasttextTokensHaveSpans) {
  AnalyzerOptions o;
  o.fasttext_tokens = true;
  o.ngram_max = 2;
  const Analyzer a(o);
  const std::string doc = "It's A (test).";
  const auto spans = term_spans(a, doc);
  std::vector<std::string> terms;
  for (const auto& s : spans) terms.push_back(s.term);
  ASSERT_EQ(terms, a.analyze(doc));
  auto text = [&](std::size_t k) { return doc.substr(spans[k].begin, spans[k].end - spans[k].begin); };
  EXPECT_EQ(text(0), "It");
  EXPECT_EQ(text(1), "'");
  EXPECT_EQ(text(3), "A");
  EXPECT_EQ(text(4), "(");
  EXPECT_EQ(text(8), "It'");   // bigram "it '"
  EXPECT_EQ(text(13), "test)");  // bigram "test )"
}

TEST(TermSpans, CharacterAnalyzersAreRefused) {
  AnalyzerOptions o;
  o.analyzer = AnalyzerKind::kChar;
  try {
    (void)term_spans(Analyzer(o), "abc");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("term spans need the word analyzer, got analyzer=char"), std::string::npos);
  }
}

}  // namespace
}  // namespace kiln::text
