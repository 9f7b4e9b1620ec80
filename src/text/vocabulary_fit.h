// Private: the fit of TfidfVectorizer's vocabulary mode (scikit-learn's CountVectorizer._count_vocab
// + _sort_features + _limit_features): per-thread counting, merge of the threads' vocabularies,
// code point order, min_df/max_df and max_features pruning.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/text/analyzer.h"
#include "kiln/text/document_feed.h"
#include "kiln/text/tfidf.h"
#include "row_builder.h"
#include "term_table.h"

namespace kiln::text::detail {

/// Counts per piece of documents (in document order) by worker-local ids, each worker's remap
/// from its ids to final columns (-1 = pruned), the vocabulary in column order and each column's
/// document frequency.
struct VocabFit {
  std::vector<RowCounts> chunks;
  std::vector<std::vector<std::int32_t>> remaps;  ///< by worker
  std::vector<std::size_t> owner;                 ///< by piece: the worker that counted it
  std::vector<std::string> vocabulary;
  std::vector<std::int64_t> df;
};

/// printf's %.17g, with ".0" appended when that reads as an integer ("2.0").
[[nodiscard]] std::string format_double(double v);

/// A table's ids in code point order of their terms, each one's first 8 bytes (big-endian,
/// zero-padded), which order them unless equal, and its length in bytes.
struct SortedTerms {
  std::vector<std::int32_t> ids;
  std::vector<std::uint64_t> prefixes;
  std::vector<std::uint32_t> lengths;
};

/// Ids of `table` in code point order of their terms (UTF-8 byte order is code point order).
/// Radix-sorts the first 8 bytes, then sorts runs of equal first 8 bytes by whole term.
[[nodiscard]] SortedTerms sorted_terms(const TermTable& table);

/// Fits the vocabulary over `docs` on core::threads() threads. Throws DataError for an empty
/// vocabulary or when pruning leaves no term, ConfigError when max_df allows fewer documents than
/// min_df for this corpus. The result does not depend on the thread count.
[[nodiscard]] VocabFit fit_vocabulary(const TfidfOptions& o, const Analyzer& analyzer,
                                      const std::vector<std::string>& docs);

/// The same over the documents of `feed`, counted on core::threads() threads as its pieces arrive
/// (returns once the feed is closed and counted). Same result as over all its documents at once.
[[nodiscard]] VocabFit fit_vocabulary(const TfidfOptions& o, const Analyzer& analyzer, DocumentFeed& feed);

}  // namespace kiln::text::detail
