// build_matrix's two ways of putting a row's entries in column order: a counting sort of a whole
// chunk (where the chunk has at least as many kept entries as the matrix has columns) and a sort
// of each row. The column count only chooses between them, so the same chunks built with a small
// and a large column count must give the same rows, for every weighting option.
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
    const int n_rows = 10 + static_cast<int>(rng() % 30);  // enough entries for the counting sort
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

TEST(WeightedRows, CountingSortAndPerRowSortGiveTheSameRows) {
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
      // kCols columns: every chunk here keeps more entries than that (the counting sort); 2^20: none
      // does (each row sorted). Only out.cols tells them apart.
      const CsrMatrix<float> counting = build_matrix<float>(o, c.rows, remaps, idf, kCols);
      const CsrMatrix<float> sorting = build_matrix<float>(o, c.rows, remaps, idf, std::int64_t{1} << 20);
      ASSERT_GT(counting.nnz(), 0);
      for (float v : counting.data) ASSERT_TRUE(std::isfinite(v));
      EXPECT_EQ(counting.indptr, sorting.indptr);
      EXPECT_EQ(counting.indices, sorting.indices);
      EXPECT_EQ(counting.data, sorting.data);  // bit for bit: the same arithmetic in the same order
      for (std::int64_t r = 0; r < counting.rows; ++r) {
        const auto b = counting.indices.begin() + counting.indptr[static_cast<std::size_t>(r)];
        const auto e = counting.indices.begin() + counting.indptr[static_cast<std::size_t>(r) + 1];
        EXPECT_TRUE(std::adjacent_find(b, e, std::greater_equal<>()) == e) << "row " << r << " not ascending";
      }
    }
  }
}

}  // namespace
}  // namespace kiln::text::detail
