// Where each term of a document occurs: the word analyzer's terms (Analyzer::analyze, same order)
// with [begin, end) byte offsets into the original document, for explanations that highlight
// features in the text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/text/analyzer.h"

namespace kiln::text {

/// One term and its span in the original document (before lowercasing); a word n-gram spans its
/// first word's start to its last word's end.
struct TermSpan {
  std::string term;
  std::size_t begin = 0;
  std::size_t end = 0;
};

/// The terms of `doc` exactly as `analyzer.analyze(doc)` returns them, in the same order, each with
/// its span. Word analyzer only (character n-grams see whitespace-normalized text): throws
/// ConfigError naming the analyzer otherwise. Offsets inside a character whose lowercase form is
/// longer (U+0130) round to that character's end. `doc` must be valid UTF-8.
[[nodiscard]] std::vector<TermSpan> term_spans(const Analyzer& analyzer, std::string_view doc);

}  // namespace kiln::text
