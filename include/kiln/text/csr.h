// Compressed sparse row matrices, the output of Kiln's text vectorizers.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::text {

/// Row i's entries are indices[indptr[i] .. indptr[i+1]) with values data[...], columns ascending
/// within a row. indptr.size() == rows + 1 and indptr.back() == indices.size() == data.size().
/// Stored values may be zero (scikit-learn's HashingVectorizer keeps entries whose signed counts
/// cancel).
template <typename T, typename Index = std::int32_t>
struct CsrMatrix {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<std::int64_t> indptr{0};
  std::vector<Index> indices;
  std::vector<T> data;

  [[nodiscard]] std::int64_t nnz() const { return static_cast<std::int64_t>(indices.size()); }
};

}  // namespace kiln::text
