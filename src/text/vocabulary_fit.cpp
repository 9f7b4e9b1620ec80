#include "vocabulary_fit.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>

#include "document_counts.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "numpy_argsort.h"
#include "work_pieces.h"

namespace kiln::text::detail {

std::string format_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

SortedTerms sorted_terms(const TermTable& table) {
  struct Key {
    std::uint64_t prefix;  ///< first 8 bytes, big-endian, zero-padded
    std::int32_t id;
  };
  const std::size_t n = table.size();
  std::vector<Key> a(n), b(n);
  std::vector<std::uint32_t> counts(8 * 256, 0);  // per byte of the prefix, a histogram
  for (std::size_t id = 0; id < n; ++id) {
    const std::string_view t = table.view(static_cast<std::int32_t>(id));
    unsigned char bytes[8] = {};
    std::memcpy(bytes, t.data(), std::min<std::size_t>(t.size(), 8));
    std::uint64_t prefix = 0;
    for (unsigned char c : bytes) prefix = (prefix << 8) | c;
    a[id] = Key{prefix, static_cast<std::int32_t>(id)};
    for (int p = 0; p < 8; ++p) ++counts[p * 256 + ((prefix >> (8 * p)) & 0xff)];
  }
  // Least significant byte first; each pass is stable, so the result is ordered by the whole
  // prefix, and by id within equal prefixes. A pass whose byte is the same everywhere is skipped.
  Key* src = a.data();
  Key* dst = b.data();
  for (int p = 0; p < 8; ++p) {
    std::uint32_t* c = counts.data() + p * 256;
    if (std::any_of(c, c + 256, [&](std::uint32_t k) { return k == n; })) continue;
    std::uint32_t sum = 0;
    for (int v = 0; v < 256; ++v) {
      const std::uint32_t k = c[v];
      c[v] = sum;
      sum += k;
    }
    for (std::size_t i = 0; i < n; ++i) dst[c[(src[i].prefix >> (8 * p)) & 0xff]++] = src[i];
    std::swap(src, dst);
  }
  // Equal prefixes (which zero padding can also give "ab" and "ab\0") fall back to the terms.
  SortedTerms sorted;
  sorted.ids.resize(n);
  sorted.prefixes.resize(n);
  sorted.lengths.resize(n);
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    while (j < n && src[j].prefix == src[i].prefix) ++j;
    if (j - i > 1) {
      std::sort(src + i, src + j, [&](const Key& x, const Key& y) { return table.view(x.id) < table.view(y.id); });
    }
    for (; i < j; ++i) {
      sorted.ids[i] = src[i].id;
      sorted.prefixes[i] = src[i].prefix;
      sorted.lengths[i] = static_cast<std::uint32_t>(table.view(src[i].id).size());
    }
  }
  return sorted;
}

namespace {

/// One thread's vocabulary (its ids), each id's document and corpus frequency, and its ids in code
/// point order of their terms.
struct Worker {
  TermTable table;
  std::vector<std::int64_t> df, tf;
  SortedTerms sorted;
};

/// A worker's frequencies over the rows it counted, then its terms sorted.
void finish_worker(const TfidfOptions& o, Worker& wk, const std::vector<const RowCounts*>& mine) {
  wk.df.assign(wk.table.size(), 0);
  wk.tf.assign(wk.table.size(), 0);
  for (const RowCounts* rows : mine) {
    const std::int32_t* cols = rows->cols.data();
    const std::int32_t* cnt = rows->counts.data();
    for (std::size_t e = 0; e < rows->cols.size(); ++e) {
      wk.df[cols[e]] += 1;
      wk.tf[cols[e]] += o.binary ? 1 : cnt[e];
    }
  }
  wk.sorted = sorted_terms(wk.table);
}

/// Merges the workers' vocabularies and prunes them (fit.chunks and fit.owner are filled).
void finish_fit(const TfidfOptions& o, std::vector<Worker>& ws, VocabFit& fit, std::size_t n);

}  // namespace

VocabFit fit_vocabulary(const TfidfOptions& o, const Analyzer& analyzer, const std::vector<std::string>& docs) {
  const std::size_t n = docs.size();
  const std::size_t workers = worker_count(n);
  const std::vector<std::size_t> bounds = work_pieces(docs, workers);
  const std::size_t n_pieces = bounds.size() - 1;
  std::vector<Worker> ws(workers);
  VocabFit fit;
  fit.chunks.resize(n_pieces);
  fit.owner.resize(n_pieces);
  run_workers(workers, n_pieces, [&](std::size_t w, auto&& next) {
    Worker& wk = ws[w];
    DocumentCounter counter(analyzer, n > kSmallBatchDocs);
    std::vector<const RowCounts*> mine;
    for (std::size_t p = next(); p < n_pieces; p = next()) {
      counter.count(docs, bounds[p], bounds[p + 1], wk.table, fit.chunks[p],
                    [&](const TermKey& key) { return wk.table.insert(key); });
      fit.owner[p] = w;
      mine.push_back(&fit.chunks[p]);
    }
    finish_worker(o, wk, mine);
  });
  finish_fit(o, ws, fit, n);
  return fit;
}

VocabFit fit_vocabulary(const TfidfOptions& o, const Analyzer& analyzer, DocumentFeed& feed) {
  const auto workers = static_cast<std::size_t>(std::max(1, core::threads()));
  std::vector<Worker> ws(workers);
  std::mutex mu;
  std::deque<RowCounts> rows;  // by piece; emplace_back keeps references valid
  std::deque<std::size_t> owner;
  core::parallel_chunks(
      workers,
      [&](std::size_t wb, std::size_t we, std::size_t) {
        for (std::size_t w = wb; w < we; ++w) {
          Worker& wk = ws[w];
          DocumentCounter counter(analyzer, true);
          std::vector<const RowCounts*> mine;
          // While the reader runs, it and the other workers use the threads; this one joins after.
          if (workers > 1 && w == workers - 1) feed.wait_closed();
          while (const DocumentFeed::Piece* piece = feed.take()) {
            RowCounts* out = nullptr;
            {
              std::lock_guard<std::mutex> lock(mu);
              while (rows.size() <= piece->index) {
                rows.emplace_back();
                owner.push_back(0);
              }
              out = &rows[piece->index];
              owner[piece->index] = w;
            }
            counter.count(piece->docs, 0, piece->docs.size(), wk.table, *out,
                          [&](const TermKey& key) { return wk.table.insert(key); });
            feed.recycle(piece);  // its documents are counted: the reader may fill its buffers again
            mine.push_back(out);
          }
          finish_worker(o, wk, mine);
        }
      },
      static_cast<int>(workers));
  VocabFit fit;
  fit.chunks.reserve(rows.size());
  for (auto& r : rows) fit.chunks.push_back(std::move(r));
  fit.owner.assign(owner.begin(), owner.end());
  finish_fit(o, ws, fit, feed.documents());
  return fit;
}

namespace {

void finish_fit(const TfidfOptions& o, std::vector<Worker>& ws, VocabFit& fit, std::size_t n) {
  const std::size_t workers = ws.size();
  // Merge the workers' sorted terms into one code point order: a term's position in it is its
  // global id; each worker's remap takes its ids there (and, after pruning, to columns).
  fit.remaps.resize(workers);
  std::size_t total = 0;
  for (std::size_t w = 0; w < workers; ++w) {
    fit.remaps[w].assign(ws[w].table.size(), -1);
    total += ws[w].table.size();
  }
  std::vector<std::string_view> terms;  // by global id (= sorted position)
  std::vector<std::int64_t> df, tf;
  terms.reserve(total);
  df.reserve(total);
  tf.reserve(total);
  // Each worker's next term; terms of equal prefix and length up to 8 bytes are equal, and of two
  // up to 8 bytes with equal prefixes, the shorter comes first (its padding is zeros).
  struct Head {
    const Worker* wk;
    std::size_t i = 0;
    [[nodiscard]] bool done() const { return i == wk->sorted.ids.size(); }
    [[nodiscard]] std::uint64_t prefix() const { return wk->sorted.prefixes[i]; }
    [[nodiscard]] std::uint32_t length() const { return wk->sorted.lengths[i]; }
    [[nodiscard]] std::int32_t id() const { return wk->sorted.ids[i]; }
    [[nodiscard]] std::string_view term() const { return wk->table.view(id()); }
  };
  auto compare = [](const Head& a, const Head& b) -> int {
    if (a.prefix() != b.prefix()) return a.prefix() < b.prefix() ? -1 : 1;
    if (a.length() <= 8 && b.length() <= 8) return a.length() == b.length() ? 0 : (a.length() < b.length() ? -1 : 1);
    return a.term().compare(b.term());
  };
  std::vector<Head> heads;
  for (const Worker& wk : ws) heads.push_back(Head{&wk, 0});
  if (workers == 2) {
    // Two workers (two threads, the usual case): the same merge without the search for the least
    // head, one comparison per term.
    Head& a = heads[0];
    Head& b = heads[1];
    auto take = [&](Head& h, std::size_t w, std::int32_t g, std::int64_t& d, std::int64_t& t) {
      const auto id = static_cast<std::size_t>(h.id());
      fit.remaps[w][id] = g;
      d += ws[w].df[id];
      t += ws[w].tf[id];
      ++h.i;
    };
    while (!a.done() || !b.done()) {
      const int c = a.done() ? 1 : (b.done() ? -1 : compare(a, b));
      const auto g = static_cast<std::int32_t>(terms.size());
      terms.push_back(c <= 0 ? a.term() : b.term());
      std::int64_t d = 0, t = 0;
      if (c <= 0) take(a, 0, g, d, t);
      if (c >= 0) take(b, 1, g, d, t);
      df.push_back(d);
      tf.push_back(t);
    }
  }
  while (workers != 2) {
    std::size_t first = workers;
    for (std::size_t w = 0; w < workers; ++w) {
      if (!heads[w].done() && (first == workers || compare(heads[w], heads[first]) < 0)) first = w;
    }
    if (first == workers) break;
    const auto g = static_cast<std::int32_t>(terms.size());
    const Head top = heads[first];
    terms.push_back(top.term());
    std::int64_t d = 0, t = 0;
    for (std::size_t w = first; w < workers; ++w) {
      Head& h = heads[w];
      if (h.done() || (w != first && compare(h, top) != 0)) continue;
      const auto id = static_cast<std::size_t>(h.id());
      fit.remaps[w][id] = g;
      d += ws[w].df[id];
      t += ws[w].tf[id];
      ++h.i;
    }
    df.push_back(d);
    tf.push_back(t);
  }
  const std::size_t n_terms = terms.size();
  if (n_terms == 0) {
    throw DataError(
        "tfidf: empty vocabulary: no document has a term (the word analyzer keeps tokens of 2 or more letters, "
        "digits or '_'); the documents may be empty or contain only punctuation and single characters");
  }
  const auto n_doc = static_cast<std::int64_t>(n);
  const double high = o.max_df.documents(n_doc);
  const double low = o.min_df.documents(n_doc);
  if (high < low) {
    throw ConfigError("tfidf.max_df=" + o.max_df.to_string() + " allows fewer documents (" + format_double(high) +
                      ") than tfidf.min_df=" + o.min_df.to_string() + " requires (" + format_double(low) + ") for " +
                      std::to_string(n_doc) + " documents; raise max_df or lower min_df");
  }
  std::vector<char> keep(n_terms, 0);  // by global id (sorted position)
  std::vector<std::int64_t> masked;    // global ids passing the df bounds
  masked.reserve(n_terms);
  for (std::size_t p = 0; p < n_terms; ++p) {
    const double d = static_cast<double>(df[p]);
    if (d <= high && d >= low) masked.push_back(static_cast<std::int64_t>(p));
  }
  if (o.max_features > 0 && static_cast<std::int64_t>(masked.size()) > o.max_features) {
    std::vector<double> neg_tf(masked.size());
    for (std::size_t m = 0; m < masked.size(); ++m) neg_tf[m] = -static_cast<double>(tf[masked[m]]);
    for (const std::int64_t m : numpy_argsort_first(neg_tf, o.max_features)) keep[masked[m]] = 1;
  } else {
    for (auto p : masked) keep[p] = 1;
  }
  std::vector<std::int32_t> column(n_terms, -1);  // by global id
  for (std::size_t p = 0; p < n_terms; ++p) {
    if (!keep[p]) continue;
    column[p] = static_cast<std::int32_t>(fit.vocabulary.size());
    fit.vocabulary.emplace_back(terms[p]);
    fit.df.push_back(df[p]);
  }
  if (fit.vocabulary.empty()) {
    throw DataError("tfidf: no terms remain after pruning with min_df=" + o.min_df.to_string() +
                    " and max_df=" + o.max_df.to_string() + " over " + std::to_string(n_doc) +
                    " documents; lower min_df or raise max_df");
  }
  for (auto& remap : fit.remaps) {
    for (auto& id : remap) id = column[static_cast<std::size_t>(id)];
  }
}

}  // namespace

}  // namespace kiln::text::detail
