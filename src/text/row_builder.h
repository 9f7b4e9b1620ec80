// Private: per-thread document-term counts, merged into CSR matrices by the vectorizers.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace kiln::text::detail {

/// std::allocator whose value-less construct leaves trivial types uninitialized, so that
/// vector::resize does not zero memory that is written next anyway.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

/// A vector of ints that resize() leaves uninitialized.
using IdVector = std::vector<std::int32_t, UninitializedAllocator<std::int32_t>>;

/// Counts for a contiguous run of documents: row r holds cols/counts[indptr[r] .. indptr[r+1]).
struct RowCounts {
  std::vector<std::int64_t> indptr{0};
  IdVector cols;
  IdVector counts;
};

}  // namespace kiln::text::detail
