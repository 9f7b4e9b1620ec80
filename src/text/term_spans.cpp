#include "kiln/text/term_spans.h"

#include "kiln/core/error.h"
#include "kiln/text/unicode.h"

namespace kiln::text {

std::vector<TermSpan> term_spans(const Analyzer& analyzer, std::string_view doc) {
  const AnalyzerOptions& o = analyzer.options();
  if (o.analyzer != AnalyzerKind::kWord) {
    throw ConfigError("term spans need the word analyzer, got analyzer=" + analyzer_name(o.analyzer) +
                      " (character n-grams have no word positions)");
  }
  // The text the analyzer tokenizes, and for each of its byte offsets the original one: lowercase
  // one code point at a time too (Python lowercases per code point except final sigma, whose two
  // forms have the same length), so the pieces give the whole text's byte layout.
  std::string lowered;
  std::vector<std::size_t> origin;  // lowered byte offset -> original byte offset; lowered.size() + 1
  if (o.lowercase) {
    python_lower(doc, lowered);
    std::string piece;
    std::size_t i = 0;
    origin.reserve(lowered.size() + 1);
    while (i < doc.size()) {
      const std::size_t begin = i;
      (void)next_code_point(doc, i);
      python_lower(doc.substr(begin, i - begin), piece);
      origin.push_back(begin);
      for (std::size_t k = 1; k < piece.size(); ++k) origin.push_back(i);  // inside: round to the end
    }
    origin.push_back(doc.size());
    if (origin.size() != lowered.size() + 1) {
      throw DataError("term spans: lowercasing this text changes its layout in a way the span map cannot follow");
    }
  } else {
    lowered.assign(doc);
  }
  // The words: the same analyzer's unigrams on the already lowercased text, as views into it.
  AnalyzerOptions words_only = o;
  words_only.lowercase = false;
  words_only.ngram_min = words_only.ngram_max = 1;
  const Analyzer words(words_only);
  AnalyzerScratch scratch;
  std::vector<std::string_view> tokens;
  words.analyze(lowered, scratch, tokens);
  auto to_doc = [&](std::size_t k) { return o.lowercase ? origin[k] : k; };
  auto offset = [&](std::string_view t) { return static_cast<std::size_t>(t.data() - lowered.data()); };
  std::vector<TermSpan> out;
  const std::size_t count = tokens.size();
  for (int n = o.ngram_min; n <= o.ngram_max && static_cast<std::size_t>(n) <= count; ++n) {
    for (std::size_t i = 0; i + static_cast<std::size_t>(n) <= count; ++i) {
      TermSpan span;
      for (int k = 0; k < n; ++k) {
        if (k) span.term.push_back(' ');
        span.term.append(tokens[i + static_cast<std::size_t>(k)]);
      }
      const std::string_view last = tokens[i + static_cast<std::size_t>(n) - 1];
      span.begin = to_doc(offset(tokens[i]));
      span.end = to_doc(offset(last) + last.size());
      out.push_back(std::move(span));
    }
  }
  return out;
}

}  // namespace kiln::text
