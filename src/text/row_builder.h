// Private: per-thread document-term counts, merged into CSR matrices by the vectorizers.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::text::detail {

/// Counts for a contiguous run of documents: row r holds cols/counts[indptr[r] .. indptr[r+1]).
struct RowCounts {
  std::vector<std::int64_t> indptr{0};
  std::vector<std::int32_t> cols;
  std::vector<std::int32_t> counts;
};

}  // namespace kiln::text::detail
