// Private: numpy 1.24's default argsort (kind="quicksort": an introsort) for a float array, so
// that ties are broken exactly as scikit-learn's `(-tfs).argsort()` breaks them.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::text {

/// Returns the permutation numpy's `np.argsort(v)` returns for a float64/float32 array without
/// NaNs (numpy/core/src/npysort/quicksort.cpp `aquicksort_`, heapsort fallback included).
std::vector<std::int64_t> numpy_argsort(const std::vector<double>& v);

/// The first k entries of numpy_argsort(v) (all of them when k >= v.size()), as a set: the same
/// indices, not in their order. Runs numpy's steps only on the ranges that hold positions on both
/// sides of k, in expected linear time.
std::vector<std::int64_t> numpy_argsort_first(const std::vector<double>& v, std::int64_t k);

}  // namespace kiln::text
