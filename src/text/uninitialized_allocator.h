// Private: an allocator for buffers that are always written before they are read.
#pragma once

#include <memory>
#include <new>
#include <utility>

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

}  // namespace kiln::text::detail
