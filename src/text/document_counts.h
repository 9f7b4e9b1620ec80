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

/// How many terms ahead of the lookup count_documents prefetches the term table's slot.
constexpr std::size_t kPrefetchAhead = 8;  // a power of 2

/// Counts each document's terms; `id_of(term, hash)` (hash = TermTable::hash(term)) returns a
/// column/id or -1 to ignore the term. `table` is the table id_of reads (for prefetching).
template <typename IdOf>
void count_documents(const Analyzer& analyzer, const std::vector<std::string>& docs, std::size_t begin,
                     std::size_t end, const TermTable& table, RowCounts& rows, IdOf&& id_of) {
  AnalyzerScratch scratch;
  std::vector<std::string_view> terms;
  std::vector<std::uint64_t> hashes;
  struct Tally {
    std::int32_t doc = -1;  ///< chunk-local document that last counted this id
    std::int32_t entry = 0;  ///< its entry in that document's row
  };
  std::vector<Tally> tally;
  std::vector<std::int32_t> touched;
  // Word unigrams of an ASCII document: tokens straight from the block scan, each hashed as it is
  // found and looked up kPrefetchAhead tokens later (its slot prefetched meanwhile).
  const AnalyzerOptions& ao = analyzer.options();
  const bool ascii_words = ao.analyzer == AnalyzerKind::kWord && ao.ngram_min == 1 && ao.ngram_max == 1 && !ao.cjk;
  AsciiWords words;
  struct Pending {
    std::string_view term;
    std::uint64_t hash;
  };
  Pending ring[kPrefetchAhead];
  // Otherwise hashes first, then lookups with the slot of a term a few places ahead already on its way.
  auto for_each_id = [&](std::string_view doc, auto&& fn) {
    if (ascii_words && words.scan(doc, ao.lowercase)) {
      std::size_t found = 0;
      words.for_each_token([&](std::string_view term) {
        const std::uint64_t h = TermTable::hash(term);
        table.prefetch(h);
        Pending& slot = ring[found & (kPrefetchAhead - 1)];
        if (found >= kPrefetchAhead) {
          const std::int32_t id = id_of(slot.term, slot.hash);
          if (id >= 0) fn(id);
        }
        slot = Pending{term, h};
        ++found;
      });
      for (std::size_t i = found > kPrefetchAhead ? found - kPrefetchAhead : 0; i < found; ++i) {
        const Pending& slot = ring[i & (kPrefetchAhead - 1)];
        const std::int32_t id = id_of(slot.term, slot.hash);
        if (id >= 0) fn(id);
      }
      return;
    }
    analyzer.analyze(doc, scratch, terms);
    hashes.resize(terms.size());
    for (std::size_t i = 0; i < terms.size(); ++i) hashes[i] = TermTable::hash(terms[i]);
    for (std::size_t i = 0; i < terms.size(); ++i) {
      if (i + kPrefetchAhead < terms.size()) table.prefetch(hashes[i + kPrefetchAhead]);
      const std::int32_t id = id_of(terms[i], hashes[i]);
      if (id >= 0) fn(id);
    }
  };
  // A few documents (a served request): sort each document's ids instead of stamping arrays as
  // long as the largest id, which would cost O(vocabulary) per call.
  if (end - begin <= kSmallBatchDocs) {
    for (std::size_t d = begin; d < end; ++d) {
      touched.clear();
      for_each_id(docs[d], [&](std::int32_t id) { touched.push_back(id); });
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
  // Each id's entry of the current row is appended at its first occurrence and counted in place.
  for (std::size_t d = begin; d < end; ++d) {
    const auto doc = static_cast<std::int32_t>(d - begin);
    const std::size_t row_start = rows.cols.size();
    for_each_id(docs[d], [&](std::int32_t id) {
      if (static_cast<std::size_t>(id) >= tally.size()) {
        tally.resize(std::max<std::size_t>(static_cast<std::size_t>(id) + 1, tally.size() * 2));
      }
      Tally& t = tally[static_cast<std::size_t>(id)];
      if (t.doc != doc) {
        t.doc = doc;
        t.entry = static_cast<std::int32_t>(rows.cols.size() - row_start);
        rows.cols.push_back(id);
        rows.counts.push_back(1);
      } else {
        ++rows.counts[row_start + static_cast<std::size_t>(t.entry)];
      }
    });
    rows.indptr.push_back(static_cast<std::int64_t>(rows.cols.size()));
  }
}

}  // namespace kiln::text::detail
