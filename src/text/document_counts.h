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

/// Chunks of at most this many documents count terms by sorting ids (see count_documents).
constexpr std::size_t kSmallBatchDocs = 64;

/// How many 64-byte blocks of an ASCII document count_documents tokenizes before looking up
/// their tokens.
constexpr std::size_t kAsciiGroupBlocks = 8;

/// How many terms ahead of the lookup count_documents prefetches the term table's slot.
constexpr std::size_t kPrefetchAhead = 8;  // a power of 2

/// Counts each document's terms; `id_of(key)` (a TermKey) returns a column/id or -1 to ignore the
/// term, and never an id of `table.size()` + (the document's terms so far) or more. `table` is the
/// table id_of reads (for prefetching and that bound).
template <typename IdOf>
void count_documents(const Analyzer& analyzer, const std::vector<std::string>& docs, std::size_t begin,
                     std::size_t end, const TermTable& table, RowCounts& rows, IdOf&& id_of) {
  AnalyzerScratch scratch;
  std::vector<std::string_view> terms;
  std::vector<TermKey> keys;
  // Word unigrams of an ASCII document: tokens straight from the block scan, keyed and their
  // slots prefetched as found, looked up a group of blocks at a time.
  const AnalyzerOptions& ao = analyzer.options();
  const bool ascii_words = ao.analyzer == AnalyzerKind::kWord && ao.ngram_min == 1 && ao.ngram_max == 1 && !ao.cjk;
  AsciiWords words;
  // Calls reserve(n) with a bound n on the document's terms, then fn(id) for each term in order.
  auto for_each_id = [&](std::string_view doc, auto&& reserve, auto&& fn) {
    if (ascii_words && words.scan(doc, ao.lowercase)) {
      reserve(doc.size() / 2 + 1);  // a token is 2+ bytes, then a separator or the end
      // Keys of kAsciiGroupBlocks blocks (at most ~22 tokens a block), slots prefetched as found,
      // then their lookups: the prefetched lines are still in L1 when read.
      constexpr std::size_t kMaxGroupTokens = kAsciiGroupBlocks * 64 / 2 + 1;
      if (keys.size() < kMaxGroupTokens) keys.resize(kMaxGroupTokens);
      AsciiWords::Cursor at;
      const std::size_t blocks = words.blocks();
      while (at.block < blocks) {
        TermKey* out = keys.data();
        const TermTable::Prefetcher prefetch = table.prefetcher();
        words.for_each_token(at, std::min(blocks, at.block + kAsciiGroupBlocks), [&](const char* p, std::size_t n) {
          const TermKey k = TermTable::key_padded(p, n);
          prefetch(k.hash);
          *out++ = k;
        });
        for (const TermKey* k = keys.data(); k != out; ++k) {
          const std::int32_t id = id_of(*k);
          if (id >= 0) fn(id);
        }
      }
      return;
    }
    analyzer.analyze(doc, scratch, terms);
    reserve(terms.size());
    keys.resize(terms.size());
    for (std::size_t i = 0; i < terms.size(); ++i) keys[i] = TermTable::key(terms[i]);
    for (std::size_t i = 0; i < terms.size(); ++i) {
      if (i + kPrefetchAhead < terms.size()) table.prefetch(keys[i + kPrefetchAhead].hash);
      const std::int32_t id = id_of(keys[i]);
      if (id >= 0) fn(id);
    }
  };
  // A few documents (a served request): sort each document's ids instead of stamping arrays as
  // long as the largest id, which would cost O(vocabulary) per call.
  if (end - begin <= kSmallBatchDocs) {
    std::vector<std::int32_t> touched;
    for (std::size_t d = begin; d < end; ++d) {
      touched.clear();
      for_each_id(docs[d], [](std::size_t) {}, [&](std::int32_t id) { touched.push_back(id); });
      std::sort(touched.begin(), touched.end());
      for (std::size_t i = 0; i < touched.size();) {
        std::size_t j = i + 1;
        while (j < touched.size() && touched[j] == touched[i]) ++j;
        rows.cols.push_back(touched[i]);
        rows.counts.push_back(static_cast<std::int32_t>(j - i));
        i = j;
      }
      rows.indptr.push_back(static_cast<std::int64_t>(rows.cols.size()));
    }
    return;
  }
  // Each id's count lives in a flat array by id, stamped with the document that last counted it;
  // an id's first occurrence in a document appends it to the row, and the row's counts are copied
  // out at the end of the document. Arrays are sized per document from the bound on its terms, so
  // the per-term path has no size checks.
  struct Tally {
    std::int32_t doc;    ///< chunk-local document that last counted this id
    std::int32_t count;  ///< its count in that document
  };
  std::vector<Tally> tally;
  Tally* tallies = nullptr;
  std::vector<std::int32_t> row_ids, row_counts;  // the current row, copied out at its end
  std::int32_t* out = nullptr;
  rows.indptr.reserve(rows.indptr.size() + (end - begin));
  for (std::size_t d = begin; d < end; ++d) {
    const auto doc = static_cast<std::int32_t>(d - begin);
    auto reserve = [&](std::size_t n_terms) {
      const std::size_t ids = table.size() + n_terms;
      if (ids > tally.size()) {
        tally.resize(std::max(ids, tally.size() * 2), Tally{-1, 0});
      }
      tallies = tally.data();
      if (n_terms > row_ids.size()) {
        row_ids.resize(std::max(n_terms, 2 * row_ids.size()));
        row_counts.resize(row_ids.size());
      }
      out = row_ids.data();
    };
    for_each_id(docs[d], reserve, [&](std::int32_t id) {
      Tally& t = tallies[id];
      if (t.doc != doc) {
        t.doc = doc;
        t.count = 1;
        *out++ = id;
      } else {
        ++t.count;
      }
    });
    const std::int32_t* ids = row_ids.data();
    const auto n_entries = static_cast<std::size_t>(out - ids);
    std::int32_t* counts = row_counts.data();
    for (std::size_t e = 0; e < n_entries; ++e) counts[e] = tallies[ids[e]].count;
    rows.cols.insert(rows.cols.end(), ids, ids + n_entries);
    rows.counts.insert(rows.counts.end(), counts, counts + n_entries);
    rows.indptr.push_back(static_cast<std::int64_t>(rows.cols.size()));
  }
}

}  // namespace kiln::text::detail
