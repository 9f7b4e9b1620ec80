// Private: turns per-chunk term counts into TF-IDF rows (scikit-learn's TfidfTransformer: tf
// transform, idf, norm) in precision T, as one CSR matrix with columns ascending in each row.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/text/csr.h"
#include "kiln/text/tfidf.h"
#include "row_builder.h"
#include "uninitialized_allocator.h"
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

/// Set-based row ordering is used up to this many columns (a row's read-back scans a word per
/// 4,096 columns).
constexpr std::int64_t kSetMaxCols = std::int64_t{1} << 18;

/// A set of columns in [0, cols), each with a count, read back in column order: a bit per column
/// and a bit per 64 columns, so that reading a row back costs a step per member and a word per
/// 4,096 columns. Members' counts are kept in an array as long as the columns, not initialized.
class ColumnSet {
 public:
  explicit ColumnSet(std::size_t cols) : count_(cols), bits_((cols + 63) / 64, 0), words_((cols + 4095) / 4096, 0) {}

  /// Adds column c with count n, or returns false (changing nothing) if c is a member already.
  bool add(std::size_t c, std::int32_t n) {
    std::uint64_t& word = bits_[c >> 6];
    const std::uint64_t bit = std::uint64_t{1} << (c & 63);
    if (word & bit) return false;
    word |= bit;
    words_[c >> 12] |= std::uint64_t{1} << ((c >> 6) & 63);
    count_[c] = n;
    return true;
  }

  /// Calls fn(column, count) for each member in ascending column order, and empties the set.
  template <typename Fn>
  void drain(Fn&& fn) {
    for (std::size_t t = 0; t < words_.size(); ++t) {
      for (std::uint64_t top = words_[t]; top != 0; top &= top - 1) {
        const std::size_t i = t * 64 + static_cast<std::size_t>(__builtin_ctzll(top));
        for (std::uint64_t word = bits_[i]; word != 0; word &= word - 1) {
          const std::size_t c = i * 64 + static_cast<std::size_t>(__builtin_ctzll(word));
          fn(c, count_[c]);
        }
        bits_[i] = 0;
      }
      words_[t] = 0;
    }
  }

 private:
  std::vector<std::int32_t, UninitializedAllocator<std::int32_t>> count_;
  std::vector<std::uint64_t> bits_;   ///< a bit per column
  std::vector<std::uint64_t> words_;  ///< a bit per word of bits_ that may be non-zero
};

/// Weights every row of every chunk and concatenates the chunks: chunk k's entry (id, count)
/// becomes column remaps[k][id] (ids are columns when remaps[k] is null; a column < 0 drops the
/// entry), tf = count (1 if binary, then 1 + ln(tf) if sublinear_tf), times idf[column] if
/// use_idf, then the row's l2 or l1 norm, in T arithmetic as scikit-learn. Entries whose count is 0
/// are dropped when use_idf (scikit-learn's sparse X * diag(idf) eliminates zeros; only hashing
/// mode has them). `idf` is read in double and converted to T per entry (or once, into a table,
/// when there are more entries than idf values: the same values). Chunks are shared out to worker
/// threads as they finish one (work_pieces.h). The chunks' ids are replaced by their columns in
/// place: the chunks are spent.
template <typename T>
CsrMatrix<T> build_matrix(const TfidfOptions& o, std::vector<RowCounts>& chunks,
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
  // Pass 1: entries kept per chunk, so that pass 2 writes each chunk at its place in the output;
  // ids become columns (pass 2 then reads them in order, not through the remap).
  std::vector<std::size_t> kept(k + 1, 0), row_base(k + 1, 0);
  run_workers(workers, k, [&](std::size_t, auto&& next) {
    for (std::size_t c = next(); c < k; c = next()) {
      RowCounts& rc = chunks[c];
      std::int32_t* rc_cols = rc.cols.data();
      const std::int32_t* rc_counts = rc.counts.data();
      std::size_t n = 0;
      if (const std::int32_t* remap = remaps[c] ? remaps[c]->data() : nullptr) {
        for (std::size_t e = 0; e < rc.cols.size(); ++e) {
          const std::int32_t col = remap[rc_cols[e]];
          rc_cols[e] = col;
          n += static_cast<std::size_t>(col >= 0 && !(drop_zero_counts && rc_counts[e] == 0));
        }
      } else {
        for (std::size_t e = 0; e < rc.cols.size(); ++e) {
          n += static_cast<std::size_t>(rc_cols[e] >= 0 && !(drop_zero_counts && rc_counts[e] == 0));
        }
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
  // idf in T, once, where the entries outnumber the values (a served request's few rows do not).
  std::vector<T> idf_t;
  if constexpr (!std::is_same_v<T, double>) {
    if (use_idf && idf.size() <= kept[k]) idf_t.assign(idf.begin(), idf.end());
  }
  const T* idf_table = idf_t.empty() ? nullptr : idf_t.data();
  // The tf of one count, times idf.
  auto weigh = [&](std::int32_t col, std::int32_t cnt) {
    T x;
    if (cnt >= 0 && cnt < kTabled) {
      x = tf_of[cnt];
    } else {
      x = binary ? T(1) : static_cast<T>(cnt);
      if (sublinear) x = std::log(x) + T(1);
    }
    if (use_idf) x = x * (idf_table ? idf_table[col] : static_cast<T>(idf_d[col]));
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
  // columns come in first-seen order, not column order. Up to kSetMaxCols columns, a row's entries
  // go into a ColumnSet and come back out in column order (a step per entry and a word per 4,096
  // columns); with more columns, or a column twice in a row, the row is sorted on its own, its
  // entries packed as (column << 32 | count as uint32).
  const bool use_set = cols > 0 && cols <= kSetMaxCols;
  run_workers(workers, k, [&](std::size_t, auto&& next) {
    std::vector<std::uint64_t> row;
    ColumnSet set(use_set ? static_cast<std::size_t>(cols) : 0);
    for (std::size_t c = next(); c < k; c = next()) {
      const RowCounts& rc = chunks[c];
      const std::int32_t* rc_cols = rc.cols.data();
      const std::int32_t* rc_counts = rc.counts.data();
      const std::size_t n_rows = rc.indptr.size() - 1;
      std::int32_t* out_col = out.indices.data();
      T* out_val = out.data.data();
      std::int64_t* indptr = out.indptr.data() + row_base[c] + 1;
      std::size_t w = kept[c];
      for (std::size_t r = 0; r < n_rows; ++r) {
        const auto b = static_cast<std::size_t>(rc.indptr[r]), e = static_cast<std::size_t>(rc.indptr[r + 1]);
        if (use_set) {
          bool unique = true;
          for (std::size_t x = b; x < e; ++x) {
            const std::int32_t col = rc_cols[x];
            const std::int32_t cnt = rc_counts[x];
            if (col >= 0 && !(drop_zero_counts && cnt == 0)) unique &= set.add(static_cast<std::size_t>(col), cnt);
          }
          if (unique) {
            T* val = out_val + w;
            std::size_t m = 0;
            set.drain([&](std::size_t col, std::int32_t cnt) {
              out_col[w + m] = static_cast<std::int32_t>(col);
              val[m] = weigh(static_cast<std::int32_t>(col), cnt);
              ++m;
            });
            normalize(val, m);
            w += m;
            indptr[r] = static_cast<std::int64_t>(w);
            continue;
          }
          set.drain([](std::size_t, std::int32_t) {});  // a column twice: sorted below, as it came
        }
        if (row.size() < e - b) row.resize(std::max(e - b, 2 * row.size()));
        std::uint64_t* v = row.data();
        std::size_t m = 0;
        for (std::size_t x = b; x < e; ++x) {
          const std::int32_t col = rc_cols[x];
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
