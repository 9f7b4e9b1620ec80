// Private: per-thread document-term counts, merged into CSR matrices by the vectorizers.
#pragma once

#include <cstdint>
#include <vector>

#include "uninitialized_allocator.h"

namespace kiln::text::detail {

/// A vector of ints that resize() leaves uninitialized.
using IdVector = std::vector<std::int32_t, UninitializedAllocator<std::int32_t>>;

/// Counts for a contiguous run of documents: row r holds cols/counts[indptr[r] .. indptr[r+1]).
struct RowCounts {
  std::vector<std::int64_t> indptr{0};
  IdVector cols;
  IdVector counts;
};

}  // namespace kiln::text::detail
