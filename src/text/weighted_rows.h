// Private: turns per-chunk term counts into TF-IDF rows (scikit-learn's TfidfTransformer: tf
// transform, idf, norm) in precision T, as one CSR matrix with columns ascending in each row.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/text/csr.h"
#include "kiln/text/tfidf.h"
#include "row_builder.h"
#include "work_pieces.h"

namespace kiln::text::detail {

/// Sorts v[0, n) ascending: insertion sort for the short rows most documents have.
inline void sort_entries(std::uint64_t* v, std::size_t n) {
  if (n > 16) {
    std::sort(v, v + n);
    return;
  }
  for (std::size_t i = 1; i < n; ++i) {
    const std::uint64_t x = v[i];
    std::size_t j = i;
    for (; j > 0 && v[j - 1] > x; --j) v[j] = v[j - 1];
    v[j] = x;
  }
}

/// Weights every row of every chunk and concatenates the chunks: chunk k's entry (id, count)
/// becomes column remaps[k][id] (ids are columns when remaps[k] is null; a column < 0 drops the
/// entry), tf = count (1 if binary, then 1 + ln(tf) if sublinear_tf), times idf[column] if
/// use_idf, then the row's l2 or l1 norm, in T arithmetic as scikit-learn. Entries whose count is 0
/// are dropped when use_idf (scikit-learn's sparse X * diag(idf) eliminates zeros; only hashing
/// mode has them). `idf` is read in double and converted per entry. Chunks are shared out to
/// worker threads as they finish one (work_pieces.h).
template <typename T>
CsrMatrix<T> build_matrix(const TfidfOptions& o, const std::vector<RowCounts>& chunks,
                          const std::vector<const std::vector<std::int32_t>*>& remaps, const std::vector<double>& idf,
                          std::int64_t cols) {
  const double* idf_d = idf.data();
  const bool binary = o.binary, sublinear = o.sublinear_tf, use_idf = o.use_idf;
  // A zero count gives a zero value exactly when it is not replaced by 1 (binary) or by ln(0)
  // (sublinear, which validation allows only without alternate signs: never a zero count).
  const bool drop_zero_counts = use_idf && !binary && !sublinear;
  const Norm norm = o.norm;
  // tf of the small counts most entries have, computed once with the per-entry expression below.
  constexpr std::int32_t kTabled = 64;
  T tf_of[kTabled];
  for (std::int32_t c = 0; c < kTabled; ++c) {
    T x = binary ? T(1) : static_cast<T>(c);
    if (sublinear) x = std::log(x) + T(1);
    tf_of[c] = x;
  }
  const std::size_t k = chunks.size();
  const std::size_t workers = worker_count(k);
  // Pass 1: entries kept per chunk, so that pass 2 writes each chunk at its place in the output.
  std::vector<std::size_t> kept(k + 1, 0), row_base(k + 1, 0);
  run_workers(workers, k, [&](std::size_t, auto&& next) {
    for (std::size_t c = next(); c < k; c = next()) {
      const RowCounts& rc = chunks[c];
      const std::int32_t* remap = remaps[c] ? remaps[c]->data() : nullptr;
      std::size_t n = 0;
      for (std::size_t e = 0; e < rc.cols.size(); ++e) {
        const std::int32_t col = remap ? remap[rc.cols[e]] : rc.cols[e];
        n += static_cast<std::size_t>(col >= 0 && !(drop_zero_counts && rc.counts[e] == 0));
      }
      kept[c + 1] = n;
    }
  });
  for (std::size_t c = 0; c < k; ++c) {
    kept[c + 1] += kept[c];
    row_base[c + 1] = row_base[c] + (chunks[c].indptr.size() - 1);
  }
  CsrMatrix<T> out;
  out.cols = cols;
  out.rows = static_cast<std::int64_t>(row_base[k]);
  out.indptr.assign(row_base[k] + 1, 0);
  out.indices.resize(kept[k]);
  out.data.resize(kept[k]);
  // The tf of one count, times idf.
  auto weigh = [&](std::int32_t col, std::int32_t cnt) {
    T x;
    if (cnt >= 0 && cnt < kTabled) {
      x = tf_of[cnt];
    } else {
      x = binary ? T(1) : static_cast<T>(cnt);
      if (sublinear) x = std::log(x) + T(1);
    }
    if (use_idf) x = x * static_cast<T>(idf_d[col]);
    return x;
  };
  // Divides a row's values by its norm (accumulated in double, in column order).
  auto normalize = [&](T* val, std::size_t m) {
    if (norm == Norm::kL2) {
      double sum = 0.0;
      for (std::size_t j = 0; j < m; ++j) sum += static_cast<T>(val[j] * val[j]);
      if (sum != 0.0) {
        sum = std::sqrt(sum);
        for (std::size_t j = 0; j < m; ++j) val[j] = static_cast<T>(static_cast<double>(val[j]) / sum);
      }
    } else if (norm == Norm::kL1) {
      double sum = 0.0;
      for (std::size_t j = 0; j < m; ++j) sum += std::fabs(val[j]);
      if (sum != 0.0) {
        for (std::size_t j = 0; j < m; ++j) val[j] = static_cast<T>(static_cast<double>(val[j]) / sum);
      }
    }
  };
  // Pass 2: each row's kept entries in column order, weighted and normalized in place. Counted
  // columns come in first-seen order, not column order. Where the chunk has at least as many
  // entries as there are columns, a counting sort of the whole chunk by column puts every row in
  // order in three linear passes; otherwise each row is sorted on its own, its entries packed as
  // (column << 32 | count as uint32) (columns are unique in a row).
  run_workers(workers, k, [&](std::size_t, auto&& next) {
    std::vector<std::uint64_t> row;
    std::vector<std::int32_t> column_start, entry_row, entry_count;
    std::vector<std::size_t> row_fill;
    for (std::size_t c = next(); c < k; c = next()) {
      const RowCounts& rc = chunks[c];
      const std::int32_t* rc_cols = rc.cols.data();
      const std::int32_t* rc_counts = rc.counts.data();
      const std::int32_t* remap = remaps[c] ? remaps[c]->data() : nullptr;
      const std::size_t n_rows = rc.indptr.size() - 1;
      std::int32_t* out_col = out.indices.data();
      T* out_val = out.data.data();
      std::int64_t* indptr = out.indptr.data() + row_base[c] + 1;
      std::size_t w = kept[c];
      const std::size_t chunk_kept = kept[c + 1] - kept[c];
      if (cols > 0 && static_cast<std::size_t>(cols) <= chunk_kept && chunk_kept < (std::size_t{1} << 31)) {
        const auto n_cols = static_cast<std::size_t>(cols);
        column_start.assign(n_cols + 1, 0);
        row_fill.resize(n_rows);
        entry_row.resize(chunk_kept);
        entry_count.resize(chunk_kept);
        auto column = [&](std::size_t x) { return remap ? remap[rc_cols[x]] : rc_cols[x]; };
        auto keep = [&](std::int32_t col, std::int32_t cnt) { return col >= 0 && !(drop_zero_counts && cnt == 0); };
        // Rows' places and the entries per column.
        for (std::size_t r = 0; r < n_rows; ++r) {
          row_fill[r] = w;
          for (auto x = static_cast<std::size_t>(rc.indptr[r]); x < static_cast<std::size_t>(rc.indptr[r + 1]); ++x) {
            const std::int32_t col = column(x);
            if (!keep(col, rc_counts[x])) continue;
            ++column_start[static_cast<std::size_t>(col) + 1];
            ++w;
          }
          indptr[r] = static_cast<std::int64_t>(w);
        }
        for (std::size_t j = 0; j < n_cols; ++j) column_start[j + 1] += column_start[j];
        // The entries by column (rows ascending within one), then each row's by column.
        for (std::size_t r = 0; r < n_rows; ++r) {
          for (auto x = static_cast<std::size_t>(rc.indptr[r]); x < static_cast<std::size_t>(rc.indptr[r + 1]); ++x) {
            const std::int32_t col = column(x);
            if (!keep(col, rc_counts[x])) continue;
            const auto at = static_cast<std::size_t>(column_start[static_cast<std::size_t>(col)]++);
            entry_row[at] = static_cast<std::int32_t>(r);
            entry_count[at] = rc_counts[x];
          }
        }
        for (std::size_t j = 0, at = 0; j < n_cols; ++j) {
          // column_start[j] is now where column j + 1 starts.
          for (const auto end = static_cast<std::size_t>(column_start[j]); at < end; ++at) {
            const std::size_t q = row_fill[static_cast<std::size_t>(entry_row[at])]++;
            out_col[q] = static_cast<std::int32_t>(j);
            out_val[q] = weigh(static_cast<std::int32_t>(j), entry_count[at]);
          }
        }
        for (std::size_t r = 0, b = kept[c]; r < n_rows; ++r) {
          const auto e = static_cast<std::size_t>(indptr[r]);
          normalize(out_val + b, e - b);
          b = e;
        }
        continue;
      }
      for (std::size_t r = 0; r < n_rows; ++r) {
        const auto b = static_cast<std::size_t>(rc.indptr[r]), e = static_cast<std::size_t>(rc.indptr[r + 1]);
        if (row.size() < e - b) row.resize(std::max(e - b, 2 * row.size()));
        std::uint64_t* v = row.data();
        std::size_t m = 0;
        for (std::size_t x = b; x < e; ++x) {
          const std::int32_t col = remap ? remap[rc_cols[x]] : rc_cols[x];
          const std::int32_t cnt = rc_counts[x];
          v[m] = (std::uint64_t{static_cast<std::uint32_t>(col)} << 32) | static_cast<std::uint32_t>(cnt);
          m += static_cast<std::size_t>(col >= 0 && !(drop_zero_counts && cnt == 0));
        }
        if (!std::is_sorted(v, v + m)) sort_entries(v, m);  // counted in column order already: no sort
        T* val = out_val + w;
        for (std::size_t j = 0; j < m; ++j) {
          const auto col = static_cast<std::int32_t>(v[j] >> 32);
          out_col[w + j] = col;
          val[j] = weigh(col, static_cast<std::int32_t>(static_cast<std::uint32_t>(v[j])));
        }
        normalize(val, m);
        w += m;
        indptr[r] = static_cast<std::int64_t>(w);
      }
    }
  });
  return out;
}

}  // namespace kiln::text::detail
