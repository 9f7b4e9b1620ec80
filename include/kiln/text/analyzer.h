// Turns one document into the terms scikit-learn's CountVectorizer/TfidfVectorizer would count:
// `build_analyzer()` for analyzer="word" (token_pattern `(?u)\b\w\w+\b`), "char" and "char_wb",
// with lowercase and ngram_range, strip_accents=None, no stop words.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::text {

/// Persisted by name in configs and artifacts ("word", "char", "char_wb"): never rename.
enum class AnalyzerKind { kWord, kChar, kCharWb };

[[nodiscard]] std::string analyzer_name(AnalyzerKind kind);
/// Parses "word|char|char_wb"; throws ConfigError naming `field`, the value and the choices.
[[nodiscard]] AnalyzerKind parse_analyzer(const std::string& name, const std::string& field = "analyzer");

struct AnalyzerOptions {
  /// Lowercase with Python's str.lower() before tokenizing. Default true.
  bool lowercase = true;
  /// word: tokens of 2+ word characters (Python re `\w`), then word n-grams joined by one space;
  /// char: character n-grams over the text with runs of 2+ whitespace characters replaced by " ";
  /// char_wb: character n-grams inside whitespace-separated words padded with one space each side.
  AnalyzerKind analyzer = AnalyzerKind::kWord;
  /// Smallest and largest n-gram length (words for word, code points otherwise), 1 <= min <= max.
  /// Default 1, 1.
  int ngram_min = 1;
  int ngram_max = 1;
  /// Word analyzer only (not in scikit-learn): inside a word, runs of CJK characters (Han, kana,
  /// Hangul; see is_cjk_char) become overlapping character bigrams (a lone CJK character stays a
  /// unigram) and the non-CJK parts between them become tokens if 2+ characters long. Default false.
  bool cjk = false;
  /// Word analyzer only (not in scikit-learn): fastText's tokens instead of the token pattern.
  /// The text splits at whitespace, and each of . ! ? , ' / ( ) is a token of its own (the
  /// preprocessing fastText's documentation gives for classification: `sed "s/\([.\!?,'/()]\)/ \1 /g"`);
  /// every other character, 1-character words and other punctuation included, stays in its token.
  /// With cjk, runs of CJK characters inside a token become character bigrams as above. Default
  /// false (scikit-learn's `(?u)\b\w\w+\b`).
  bool fasttext_tokens = false;

  /// Throws ConfigError naming `prefix` + field and the bad value.
  void validate(const std::string& prefix = "analyzer.") const;
};

/// Reusable buffers for Analyzer::analyze; one per thread.
struct AnalyzerScratch {
  std::string lowered;
  std::string text;
  std::string joined;
  std::vector<std::uint32_t> offsets;
  std::vector<std::string_view> tokens;
};

/// Thread-safe after construction (analyze is const; each thread brings its own scratch).
class Analyzer {
 public:
  /// Validates `options` (ConfigError).
  explicit Analyzer(AnalyzerOptions options);

  /// Replaces `terms` with the terms of `doc`, in scikit-learn's order. The views point into `doc`
  /// or `scratch` and stay valid until the next call with the same scratch. `doc` must be valid
  /// UTF-8.
  void analyze(std::string_view doc, AnalyzerScratch& scratch, std::vector<std::string_view>& terms) const;

  /// Convenience copy of the terms.
  [[nodiscard]] std::vector<std::string> analyze(std::string_view doc) const;

  [[nodiscard]] const AnalyzerOptions& options() const { return options_; }

 private:
  void word_tokens(std::string_view text, std::vector<std::string_view>& tokens) const;
  void fasttext_tokens(std::string_view text, std::vector<std::string_view>& tokens) const;
  void word_ngrams(AnalyzerScratch& scratch, std::vector<std::string_view>& terms) const;
  void char_ngrams(std::string_view text, AnalyzerScratch& scratch, std::vector<std::string_view>& terms) const;
  void char_wb_ngrams(std::string_view text, AnalyzerScratch& scratch,
                      std::vector<std::string_view>& terms) const;

  AnalyzerOptions options_;
};

}  // namespace kiln::text
