// TF-IDF features, identical to scikit-learn 1.2's TfidfVectorizer (vocabulary, tie order of
// max_features, idf, sublinear tf, norms, float32/float64 arithmetic), plus a hashing mode
// (HashingVectorizer + TfidfTransformer) and CJK bigrams.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/text/analyzer.h"
#include "kiln/text/csr.h"
#include "kiln/text/document_feed.h"
#include "kiln/text/hashing_vectorizer.h"

namespace kiln::text {

/// A document-frequency bound, as scikit-learn's min_df/max_df: a proportion of the documents
/// (a float there) or an absolute number of documents (an int there).
struct DfBound {
  double value = 1.0;
  bool is_count = false;

  [[nodiscard]] static DfBound proportion(double p) { return {p, false}; }
  [[nodiscard]] static DfBound count(std::int64_t n) { return {static_cast<double>(n), true}; }
  /// "0.5" (contains '.', or an exponent) is a proportion, "2" is a count. Throws ConfigError
  /// naming `field` for anything else.
  [[nodiscard]] static DfBound parse(const std::string& text, const std::string& field);
  /// The documents this bound allows for a corpus of n documents (scikit-learn: value or value*n).
  [[nodiscard]] double documents(std::int64_t n) const { return is_count ? value : value * static_cast<double>(n); }
  /// "2" for counts, "0.5" for proportions.
  [[nodiscard]] std::string to_string() const;
};

/// Row normalization. Persisted by name ("l2", "l1", "none"): never rename.
enum class Norm { kL2, kL1, kNone };
[[nodiscard]] std::string norm_name(Norm norm);
[[nodiscard]] Norm parse_norm(const std::string& name, const std::string& field = "tfidf.norm");

/// Arithmetic and output precision. Persisted by name ("float32", "float64").
enum class Dtype { kFloat32, kFloat64 };
[[nodiscard]] std::string dtype_name(Dtype dtype);
[[nodiscard]] Dtype parse_dtype(const std::string& name, const std::string& field = "tfidf.dtype");

struct TfidfOptions {
  /// Lowercase with Python's str.lower() first. Default true.
  bool lowercase = true;
  /// word | char | char_wb (see AnalyzerOptions). Default word.
  AnalyzerKind analyzer = AnalyzerKind::kWord;
  /// N-gram lengths, 1 <= ngram_min <= ngram_max. Default (1, 1).
  int ngram_min = 1;
  int ngram_max = 1;
  /// CJK character bigrams inside words (word analyzer only; not in scikit-learn). Default false.
  bool cjk = false;
  /// fastText's tokens instead of the token pattern (word analyzer only; not in scikit-learn; see
  /// AnalyzerOptions::fasttext_tokens). Default false.
  bool fasttext_tokens = false;
  /// Drop terms in fewer documents than this: a proportion in [0, 1] or a count >= 1. Default count 1.
  DfBound min_df = DfBound::count(1);
  /// Drop terms in more documents than this: a proportion in (0, 1] or a count >= 1. Default 1.0.
  DfBound max_df = DfBound::proportion(1.0);
  /// Keep at most this many terms, the most frequent over the corpus (ties broken as numpy's
  /// argsort breaks them); 0 keeps all. Default 0.
  std::int64_t max_features = 0;
  /// Count presence (1) instead of occurrences. Default false.
  bool binary = false;
  /// Row normalization. Default l2.
  Norm norm = Norm::kL2;
  /// Multiply by idf. Default true.
  bool use_idf = true;
  /// idf = ln((1 + n) / (1 + df)) + 1 instead of ln(n / df) + 1. Default true.
  bool smooth_idf = true;
  /// tf = 1 + ln(tf). Default false.
  bool sublinear_tf = false;
  /// Precision of the arithmetic and of the output. Default float32.
  Dtype dtype = Dtype::kFloat32;
  /// Hashed columns instead of a fitted vocabulary (min_df, max_df and max_features then must keep
  /// their defaults). Default: unset (vocabulary).
  std::optional<HashingOptions> hashing;

  /// Throws ConfigError naming the field ("tfidf.max_df") and the bad value.
  void validate() const;
  [[nodiscard]] AnalyzerOptions analyzer_options() const;
};

/// What transform() saw of one document: its terms (n-grams included, as the analyzer makes them)
/// and how many of them are outside the fitted vocabulary (ignored in the output).
struct TermCounts {
  std::int64_t terms = 0;
  std::int64_t out_of_vocabulary = 0;
};

/// Fit on a corpus, then transform batches into CSR rows. Thread-safe for concurrent const use
/// (transform) after fit; fit is not. Work is split over core::threads() threads.
namespace detail {
struct VocabFit;
}  // namespace detail

class TfidfVectorizer {
 public:
  /// Validates `options` (ConfigError).
  explicit TfidfVectorizer(TfidfOptions options = {});

  /// Learns the vocabulary (or, in hashing mode, the document frequencies) and the idf.
  /// Throws DataError for an empty vocabulary or when pruning leaves no term, ConfigError when
  /// max_df allows fewer documents than min_df for this corpus.
  void fit(const std::vector<std::string>& docs);

  /// fit(docs) then transform(docs), tokenizing once. T must match options().dtype (float for
  /// float32, double for float64), else ConfigError. `fitted`, when given, is called once the
  /// vectorizer is fitted (vocabulary, idf, to_json() final), before the matrix is built: a caller
  /// may start saving the fitted state there while this thread builds the rows. It must not modify
  /// the vectorizer; what it throws propagates and no matrix is built.
  template <typename T>
  [[nodiscard]] CsrMatrix<T> fit_transform(const std::vector<std::string>& docs,
                                           const std::function<void()>& fitted = {});

  /// The same over the documents of `feed` (vocabulary mode only: ConfigError with hashing), counted
  /// while another thread still reads and pushes them; returns once the feed is closed. Uses
  /// core::threads() threads besides the reader's.
  template <typename T>
  [[nodiscard]] CsrMatrix<T> fit_transform(DocumentFeed& feed, const std::function<void()>& fitted = {});

  /// Rows in input order, columns in vocabulary order; terms not in the vocabulary are ignored.
  /// Throws Error if not fitted; T as in fit_transform. `counts`, when given, gets one TermCounts
  /// per document from the same analysis (left empty in hashing mode: no vocabulary).
  template <typename T>
  [[nodiscard]] CsrMatrix<T> transform(const std::vector<std::string>& docs,
                                       std::vector<TermCounts>* counts = nullptr) const;

  /// Column of `term` (an analyzer term: a token, or word n-gram tokens joined by one space), -1
  /// when the fitted vocabulary lacks it. Vocabulary mode only: throws Error in hashing mode or
  /// before fit. Thread-safe like transform().
  [[nodiscard]] std::int64_t column_of(std::string_view term) const;

  /// Rows of term counts (columns unique within a row, any order) weighted exactly as transform()
  /// weighs a document's counts: tf (binary, sublinear), idf, norm, columns ascending. For callers
  /// that count a document's terms themselves (explanations' masked texts). Throws Error if not
  /// fitted; T as in fit_transform.
  template <typename T>
  [[nodiscard]] CsrMatrix<T> weigh(const CsrMatrix<std::int32_t>& counts) const;

  [[nodiscard]] bool fitted() const { return fitted_; }
  [[nodiscard]] const TfidfOptions& options() const { return options_; }
  /// Terms in column order (sorted by code point); empty in hashing mode.
  [[nodiscard]] const std::vector<std::string>& vocabulary() const { return vocabulary_; }
  /// Number of output columns (vocabulary size or hashing.n_features).
  [[nodiscard]] std::int64_t n_columns() const;
  /// Documents seen by fit.
  [[nodiscard]] std::int64_t n_documents() const { return n_documents_; }
  /// idf per column, computed in options().dtype precision; empty when use_idf is false.
  [[nodiscard]] const std::vector<double>& idf() const { return idf_; }

  /// The fitted state as JSON text (format "kiln.tfidf", version 1): options, vocabulary in
  /// column order and idf (or, in hashing mode, per-column document frequencies).
  /// Persisted in artifacts: fields are only ever added.
  [[nodiscard]] std::string to_json() const;
  /// Rebuilds a fitted vectorizer from to_json() output. Throws ArtifactError naming the first
  /// bad field (wrong format or version, bad option, duplicate term, idf length or value).
  [[nodiscard]] static TfidfVectorizer from_json(const std::string& json);

 private:
  /// Vocabulary, idf and lookup from a vocabulary fit, then the fitted documents' rows.
  template <typename T>
  CsrMatrix<T> finish_fit(detail::VocabFit fit, const std::function<void()>& fitted);
  void finish_idf(const std::vector<std::int64_t>& df);
  void build_lookup();
  template <typename T>
  void check_dtype(const char* what) const;

  TfidfOptions options_;
  bool fitted_ = false;
  std::int64_t n_documents_ = 0;
  std::vector<std::string> vocabulary_;
  std::vector<double> idf_;
  /// Hashing mode with idf: columns with df > 0 and their df (persisted instead of idf_).
  std::vector<std::int32_t> df_columns_;
  std::vector<std::int64_t> df_counts_;
  struct Lookup;
  std::shared_ptr<const Lookup> lookup_;
};

}  // namespace kiln::text
