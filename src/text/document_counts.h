// Private: the counting pass shared by TF-IDF fit and transform (and bench/tfidf_analyzer.cpp):
// analyze each document and count its terms by id, per thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ascii_words.h"
#include "kiln/text/analyzer.h"
#include "row_builder.h"
#include "term_table.h"

namespace kiln::text::detail {

/// Jobs of at most this many documents count terms by sorting ids (see DocumentCounter).
constexpr std::size_t kSmallBatchDocs = 64;

/// How many 64-byte blocks of an ASCII document count_documents tokenizes before looking up
/// their tokens.
constexpr std::size_t kAsciiGroupBlocks = 8;

/// How many terms ahead of the lookup count_documents prefetches the term table's slot.
constexpr std::size_t kPrefetchAhead = 8;  // a power of 2

/// One thread's counting pass: analyzes documents and counts their terms by id into RowCounts.
/// Reusable over many document ranges of one job (its buffers and per-id tallies persist), but
/// not thread-safe: one per thread.
class DocumentCounter {
 public:
  /// `many`: the job has more than kSmallBatchDocs documents, so ids are counted in per-id tallies
  /// (arrays as long as the table) rather than by sorting each document's ids, which costs
  /// O(vocabulary) per call in a served request of a few texts.
  DocumentCounter(const Analyzer& analyzer, bool many) : analyzer_(analyzer), many_(many) {
    const AnalyzerOptions& ao = analyzer.options();
    ascii_words_ = ao.analyzer == AnalyzerKind::kWord && ao.ngram_min == 1 && ao.ngram_max == 1 && !ao.cjk && !ao.fasttext_tokens;
    lowercase_ = ao.lowercase;
  }

  /// Appends the rows of docs[begin, end) to `rows`. `id_of(key)` (a TermKey) returns a column/id
  /// or -1 to ignore the term, and never an id of `table.size()` + (the document's terms so far) or
  /// more; `table` is the table id_of reads (for prefetching and that bound). A document must not
  /// be counted twice by one counter.
  /// `docs` is a vector of std::string or std::string_view.
  template <typename Docs, typename IdOf>
  void count(const Docs& docs, std::size_t begin, std::size_t end, const TermTable& table,
             RowCounts& rows, IdOf&& id_of) {
    if (!many_) {
      count_sorting(docs, begin, end, table, rows, id_of);
      return;
    }
    // Each id has a tally, stamped with the document that last counted it and where that
    // document's entry for it is; an id's first occurrence in a document appends the entry (count
    // 1) to the rows, later ones increment it in place. The rows' arrays are kept larger than used
    // and grown from the bound on each document's terms, so the per-term path has no size checks.
    std::size_t used = rows.cols.size();  // entries of the finished documents
    rows.indptr.reserve(rows.indptr.size() + (end - begin));
    // Room for the word analyzer's bound on every document at once: one allocation, and the
    // pages that no entry reaches are never touched (the arrays are not initialized).
    std::size_t word_bound = 0;
    for (std::size_t d = begin; d < end; ++d) word_bound += docs[d].size() / 2 + 1;
    if (used + word_bound > rows.cols.size()) {
      rows.cols.resize(used + word_bound);
      rows.counts.resize(used + word_bound);
    }
    for (std::size_t d = begin; d < end; ++d) {
      const std::int32_t doc = next_doc_++;
      std::int32_t* row_cols = nullptr;
      std::int32_t* row_counts = nullptr;
      Tally* tallies = nullptr;
      std::int32_t n_row = 0;
      auto reserve = [&](std::size_t n_terms) {
        const std::size_t ids = table.size() + n_terms;
        if (ids > tally_.size()) tally_.resize(std::max(ids, tally_.size() * 2), Tally{-1, 0});
        tallies = tally_.data();
        if (used + n_terms > rows.cols.size()) {
          rows.cols.resize(std::max(used + n_terms, 2 * rows.cols.size()));
          rows.counts.resize(rows.cols.size());
        }
        row_cols = rows.cols.data() + used;
        row_counts = rows.counts.data() + used;
      };
      for_each_id(docs[d], table, id_of, reserve, [&](std::int32_t id) {
        Tally& t = tallies[id];
        if (t.doc != doc) {
          t = Tally{doc, n_row};
          row_cols[n_row] = id;
          row_counts[n_row] = 1;
          ++n_row;
        } else {
          ++row_counts[t.pos];
        }
      });
      used += static_cast<std::size_t>(n_row);
      rows.indptr.push_back(static_cast<std::int64_t>(used));
    }
    rows.cols.resize(used);
    rows.counts.resize(used);
  }

 private:
  struct Tally {
    std::int32_t doc;  ///< document (its number in this counter) that last counted this id
    std::int32_t pos;  ///< that document's entry for this id, from the document's first entry
  };

  /// Calls reserve(n) with a bound n on the document's terms, then fn(id) for each term in order.
  template <typename IdOf, typename Reserve, typename Fn>
  void for_each_id(std::string_view doc, const TermTable& table, IdOf& id_of, Reserve&& reserve, Fn&& fn) {
    // Word unigrams of an ASCII document: tokens straight from the block scan, keyed and their
    // slots prefetched as found, looked up a group of blocks at a time.
    if (ascii_words_ && words_.scan(doc, lowercase_)) {
      reserve(doc.size() / 2 + 1);  // a token is 2+ bytes, then a separator or the end
      // Keys of kAsciiGroupBlocks blocks (at most 32 runs a block), slots prefetched as found,
      // then their lookups: the prefetched lines are still in L1 when read.
      constexpr std::size_t kMaxGroupTokens = kAsciiGroupBlocks * 64 / 2 + 1;
      if (keys_.size() < kMaxGroupTokens) keys_.resize(kMaxGroupTokens);
      AsciiWords::Cursor at;
      const std::size_t blocks = words_.blocks();
      while (at.block < blocks) {
        TermKey* out = keys_.data();
        const TermTable::Prefetcher prefetch = table.prefetcher();
        // Every run is keyed; only runs of 2+ bytes advance `out` (no branch on the length).
        words_.for_each_run(at, std::min(blocks, at.block + kAsciiGroupBlocks), [&](const char* p, std::size_t n) {
          const TermKey k = TermTable::key_padded(p, n);
          prefetch(k.hash);
          *out = k;
          out += n >= 2;
        });
        for (const TermKey* k = keys_.data(); k != out; ++k) {
          const std::int32_t id = id_of(*k);
          if (id >= 0) fn(id);
        }
      }
      return;
    }
    analyzer_.analyze(doc, scratch_, terms_);
    reserve(terms_.size());
    keys_.resize(std::max(keys_.size(), terms_.size()));
    for (std::size_t i = 0; i < terms_.size(); ++i) keys_[i] = TermTable::key(terms_[i]);
    for (std::size_t i = 0; i < terms_.size(); ++i) {
      if (i + kPrefetchAhead < terms_.size()) table.prefetch(keys_[i + kPrefetchAhead].hash);
      const std::int32_t id = id_of(keys_[i]);
      if (id >= 0) fn(id);
    }
  }

  /// A few documents: sorts each document's ids.
  template <typename Docs, typename IdOf>
  void count_sorting(const Docs& docs, std::size_t begin, std::size_t end, const TermTable& table,
                     RowCounts& rows, IdOf& id_of) {
    for (std::size_t d = begin; d < end; ++d) {
      touched_.clear();
      for_each_id(
          docs[d], table, id_of, [](std::size_t) {}, [&](std::int32_t id) { touched_.push_back(id); });
      std::sort(touched_.begin(), touched_.end());
      for (std::size_t i = 0; i < touched_.size();) {
        std::size_t j = i + 1;
        while (j < touched_.size() && touched_[j] == touched_[i]) ++j;
        rows.cols.push_back(touched_[i]);
        rows.counts.push_back(static_cast<std::int32_t>(j - i));
        i = j;
      }
      rows.indptr.push_back(static_cast<std::int64_t>(rows.cols.size()));
    }
  }

  const Analyzer& analyzer_;
  bool many_;
  bool ascii_words_;
  bool lowercase_;
  AnalyzerScratch scratch_;
  std::vector<std::string_view> terms_;
  std::vector<TermKey> keys_;
  AsciiWords words_;
  std::vector<Tally> tally_;
  std::int32_t next_doc_ = 0;  ///< the next document's number, for the tallies
  std::vector<std::int32_t> touched_;
};

/// Counts docs[begin, end) with a fresh DocumentCounter (see DocumentCounter::count).
template <typename IdOf>
void count_documents(const Analyzer& analyzer, const std::vector<std::string>& docs, std::size_t begin, std::size_t end,
                     const TermTable& table, RowCounts& rows, IdOf&& id_of) {
  DocumentCounter counter(analyzer, end - begin > kSmallBatchDocs);
  counter.count(docs, begin, end, table, rows, id_of);
}

}  // namespace kiln::text::detail
