#include "vocabulary_fit.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

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

std::vector<std::int32_t> sorted_ids(const TermTable& table) {
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
  std::vector<std::int32_t> sorted(n);
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    while (j < n && src[j].prefix == src[i].prefix) ++j;
    if (j - i > 1) {
      std::sort(src + i, src + j, [&](const Key& x, const Key& y) { return table.view(x.id) < table.view(y.id); });
    }
    for (; i < j; ++i) sorted[i] = src[i].id;
  }
  return sorted;
}

VocabFit fit_vocabulary(const TfidfOptions& o, const Analyzer& analyzer, const std::vector<std::string>& docs) {
  const std::size_t n = docs.size();
  const std::size_t workers = worker_count(n);
  const std::vector<std::size_t> bounds = work_pieces(docs, workers);
  const std::size_t n_pieces = bounds.size() - 1;
  /// One thread's vocabulary (its ids), and each id's document and corpus frequency.
  struct Worker {
    TermTable table;
    std::vector<std::int64_t> df, tf;
  };
  std::vector<Worker> ws(workers);
  VocabFit fit;
  fit.chunks.resize(n_pieces);
  fit.owner.resize(n_pieces);
  run_workers(workers, n_pieces, [&](std::size_t w, auto&& next) {
    Worker& wk = ws[w];
    DocumentCounter counter(analyzer, n > kSmallBatchDocs);
    std::vector<std::size_t> mine;
    for (std::size_t p = next(); p < n_pieces; p = next()) {
      counter.count(docs, bounds[p], bounds[p + 1], wk.table, fit.chunks[p],
                    [&](const TermKey& key) { return wk.table.insert(key); });
      fit.owner[p] = w;
      mine.push_back(p);
    }
    wk.df.assign(wk.table.size(), 0);
    wk.tf.assign(wk.table.size(), 0);
    for (std::size_t p : mine) {
      const RowCounts& rows = fit.chunks[p];
      const std::int32_t* cols = rows.cols.data();
      const std::int32_t* cnt = rows.counts.data();
      for (std::size_t e = 0; e < rows.cols.size(); ++e) {
        wk.df[cols[e]] += 1;
        wk.tf[cols[e]] += o.binary ? 1 : cnt[e];
      }
    }
  });
  // Merge: worker 0's ids are the global ids; the other workers' terms are added after them.
  fit.remaps.resize(workers);
  TermTable global = std::move(ws[0].table);
  std::vector<std::int64_t> df = std::move(ws[0].df), tf = std::move(ws[0].tf);
  for (std::size_t w = 1; w < workers; ++w) {
    Worker& wk = ws[w];
    auto& remap = fit.remaps[w];
    remap.resize(wk.table.size());
    for (std::size_t id = 0; id < remap.size(); ++id) {
      const std::int32_t g = global.insert(wk.table.view(static_cast<std::int32_t>(id)));
      remap[id] = g;
      if (static_cast<std::size_t>(g) == df.size()) {
        df.push_back(0);
        tf.push_back(0);
      }
      df[g] += wk.df[id];
      tf[g] += wk.tf[id];
    }
    wk.table = TermTable(16);
  }
  const std::size_t n_terms = global.size();
  if (n_terms == 0) {
    throw DataError(
        "tfidf: empty vocabulary: no document has a term (the word analyzer keeps tokens of 2 or more letters, "
        "digits or '_'); the documents may be empty or contain only punctuation and single characters");
  }
  const std::vector<std::int32_t> sorted = sorted_ids(global);
  const auto n_doc = static_cast<std::int64_t>(n);
  const double high = o.max_df.documents(n_doc);
  const double low = o.min_df.documents(n_doc);
  if (high < low) {
    throw ConfigError("tfidf.max_df=" + o.max_df.to_string() + " allows fewer documents (" + format_double(high) +
                      ") than tfidf.min_df=" + o.min_df.to_string() + " requires (" + format_double(low) + ") for " +
                      std::to_string(n_doc) + " documents; raise max_df or lower min_df");
  }
  std::vector<char> keep(n_terms, 0);  // by sorted position
  std::vector<std::int64_t> masked;    // sorted positions passing the df bounds
  masked.reserve(n_terms);
  for (std::size_t p = 0; p < n_terms; ++p) {
    const double d = static_cast<double>(df[sorted[p]]);
    if (d <= high && d >= low) masked.push_back(static_cast<std::int64_t>(p));
  }
  if (o.max_features > 0 && static_cast<std::int64_t>(masked.size()) > o.max_features) {
    std::vector<double> neg_tf(masked.size());
    for (std::size_t m = 0; m < masked.size(); ++m) neg_tf[m] = -static_cast<double>(tf[sorted[masked[m]]]);
    const auto order = numpy_argsort(neg_tf);
    for (std::int64_t m = 0; m < o.max_features; ++m) keep[masked[order[m]]] = 1;
  } else {
    for (auto p : masked) keep[p] = 1;
  }
  std::vector<std::int32_t> column(n_terms, -1);  // by global id
  for (std::size_t p = 0; p < n_terms; ++p) {
    if (!keep[p]) continue;
    column[sorted[p]] = static_cast<std::int32_t>(fit.vocabulary.size());
    fit.vocabulary.emplace_back(global.view(sorted[p]));
    fit.df.push_back(df[sorted[p]]);
  }
  if (fit.vocabulary.empty()) {
    throw DataError("tfidf: no terms remain after pruning with min_df=" + o.min_df.to_string() +
                    " and max_df=" + o.max_df.to_string() + " over " + std::to_string(n_doc) +
                    " documents; lower min_df or raise max_df");
  }
  for (std::size_t w = 1; w < workers; ++w) {
    for (auto& id : fit.remaps[w]) id = column[id];
  }
  fit.remaps[0] = std::move(column);  // worker 0's ids are global ids (a prefix of them)
  return fit;
}

}  // namespace kiln::text::detail
