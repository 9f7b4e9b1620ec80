// build_matrix's two ways of putting a row's entries in column order: a set of columns read back
// in order (up to kSetMaxCols columns) and a sort of each row. The column count only chooses
// between them, so the same chunks built with a small and a large column count must give the same
// rows, for every weighting option.
#include "weighted_rows.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

namespace kiln::text::detail {
namespace {

struct Chunks {
  std::vector<RowCounts> rows;
  std::vector<std::vector<std::int32_t>> remaps;
};

// `n_chunks` chunks of random rows over `ids` local ids each (columns unique within a row, in
// random order), with remaps to columns [0, cols) that drop about a fifth of the ids (-1). Counts
// of 0 (which only hashing's cancelling signs give, and never with sublinear tf) when `zeros`.
Chunks random_chunks(std::mt19937& rng, std::size_t n_chunks, std::int32_t ids, std::int32_t cols, bool zeros) {
  Chunks c;
  for (std::size_t k = 0; k < n_chunks; ++k) {
    RowCounts rc;
    const int n_rows = 10 + static_cast<int>(rng() % 30);
    std::vector<std::int32_t> all(static_cast<std::size_t>(ids));
    std::iota(all.begin(), all.end(), 0);
    for (int r = 0; r < n_rows; ++r) {
      std::shuffle(all.begin(), all.end(), rng);
      const std::size_t len = rng() % 30;  // empty rows too
      for (std::size_t j = 0; j < len; ++j) {
        rc.cols.push_back(all[j]);
        const auto count = static_cast<std::int32_t>(rng() % 5 == 0 ? rng() % 100 : rng() % 4);
        rc.counts.push_back(zeros || count > 0 ? count : 1);
      }
      rc.indptr.push_back(static_cast<std::int64_t>(rc.cols.size()));
    }
    std::vector<std::int32_t> remap(static_cast<std::size_t>(ids));
    for (auto& m : remap) m = rng() % 5 == 0 ? -1 : static_cast<std::int32_t>(rng() % static_cast<std::uint32_t>(cols));
    // A remap is one-to-one on the ids it keeps (one term, one column): keep the first id per column.
    std::vector<char> used(static_cast<std::size_t>(cols), 0);
    for (auto& m : remap) {
      if (m >= 0 && used[static_cast<std::size_t>(m)]++) m = -1;
    }
    c.rows.push_back(std::move(rc));
    c.remaps.push_back(std::move(remap));
  }
  return c;
}

TEST(WeightedRows, ColumnSetAndPerRowSortGiveTheSameRows) {
  std::mt19937 rng(11);
  constexpr std::int32_t kCols = 24;
  const Chunks with_zeros = random_chunks(rng, 12, 60, kCols, true);
  const Chunks no_zeros = random_chunks(rng, 12, 60, kCols, false);
  std::vector<double> idf(1 << 20);
  for (auto& v : idf) v = 1.0 + static_cast<double>(rng() % 1000) / 250.0;
  for (const Norm norm : {Norm::kL2, Norm::kL1, Norm::kNone}) {
    for (int flags = 0; flags < 8; ++flags) {
      TfidfOptions o;
      o.norm = norm;
      o.binary = flags & 1;
      o.sublinear_tf = (flags & 2) != 0 && !o.binary;
      o.use_idf = (flags & 4) != 0;
      SCOPED_TRACE("norm " + std::to_string(static_cast<int>(norm)) + ", flags " + std::to_string(flags));
      const Chunks& c = o.sublinear_tf ? no_zeros : with_zeros;
      std::vector<const std::vector<std::int32_t>*> remaps;
      for (const auto& r : c.remaps) remaps.push_back(&r);
      // kCols columns: the column set; 2^20 (more than kSetMaxCols): each row sorted. Only out.cols
      // tells them apart.
      std::vector<RowCounts> rows_a = c.rows, rows_b = c.rows;  // build_matrix spends its chunks
      // idf as long as the columns: converted to float once (a table); 2^20 values: per entry.
      const std::vector<double> idf_cols(idf.begin(), idf.begin() + kCols);
      const CsrMatrix<float> with_set = build_matrix<float>(o, rows_a, remaps, idf_cols, kCols);
      const CsrMatrix<float> sorting = build_matrix<float>(o, rows_b, remaps, idf, std::int64_t{1} << 20);
      ASSERT_GT(with_set.nnz(), 0);
      for (float v : with_set.data) ASSERT_TRUE(std::isfinite(v));
      EXPECT_EQ(with_set.indptr, sorting.indptr);
      EXPECT_EQ(with_set.indices, sorting.indices);
      EXPECT_EQ(with_set.data, sorting.data);  // bit for bit: the same arithmetic in the same order
      for (std::int64_t r = 0; r < with_set.rows; ++r) {
        const auto b = with_set.indices.begin() + with_set.indptr[static_cast<std::size_t>(r)];
        const auto e = with_set.indices.begin() + with_set.indptr[static_cast<std::size_t>(r) + 1];
        EXPECT_TRUE(std::adjacent_find(b, e, std::greater_equal<>()) == e) << "row " << r << " not ascending";
      }
    }
  }
}

TEST(WeightedRows, ARowWithAColumnTwiceIsSortedAsItCame) {
  // Counts given to TfidfVectorizer::weigh may repeat a column in a row; both ways keep both entries.
  RowCounts rc;
  rc.cols = {3, 1, 3, 0, 2};
  rc.counts = {1, 2, 5, 1, 1};
  rc.indptr = {0, 3, 5};
  std::vector<RowCounts> chunks_a{rc}, chunks_b{rc};
  const std::vector<double> idf(1 << 20, 1.5);
  TfidfOptions o;
  const CsrMatrix<float> with_set = build_matrix<float>(o, chunks_a, {nullptr}, idf, 4);
  const CsrMatrix<float> sorting = build_matrix<float>(o, chunks_b, {nullptr}, idf, std::int64_t{1} << 20);
  EXPECT_EQ(with_set.indptr, (std::vector<std::int64_t>{0, 3, 5}));
  EXPECT_EQ(with_set.indices, (std::vector<std::int32_t>{1, 3, 3, 0, 2}));
  EXPECT_EQ(with_set.indptr, sorting.indptr);
  EXPECT_EQ(with_set.indices, sorting.indices);
  EXPECT_EQ(with_set.data, sorting.data);
}

}  // namespace
}  // namespace kiln::text::detail
