// numpy_argsort_first keeps exactly the indices that numpy_argsort puts first (max_features'
// choice among tied frequencies depends on them), on tie-heavy arrays like term frequencies.
#include "numpy_argsort.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace kiln::text {
namespace {

TEST(NumpyArgsort, TheFirstKAreTheFullSortsFirstK) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    const std::size_t n = trial % 100 == 0 ? 20000 + rng() % 5000 : rng() % 400;
    const int kinds = 1 + static_cast<int>(rng() % 60);
    std::vector<double> v(n);
    const int pattern = static_cast<int>(rng() % 5);
    for (std::size_t i = 0; i < n; ++i) {
      switch (pattern) {
        case 0: v[i] = -static_cast<double>(rng() % static_cast<unsigned>(kinds)); break;  // few values
        case 1: v[i] = -static_cast<double>(i % static_cast<std::size_t>(kinds)); break;   // a sawtooth
        case 2: v[i] = static_cast<double>(n - i); break;                                  // descending
        case 3: v[i] = -std::floor(1e4 / static_cast<double>(1 + rng() % 5000)); break;    // Zipf-like tf
        default: v[i] = static_cast<double>(std::min(i, n - i)); break;                    // organ pipe
      }
    }
    const std::vector<std::int64_t> full = numpy_argsort(v);
    for (const std::int64_t k : {std::int64_t{0}, std::int64_t{1}, static_cast<std::int64_t>(n / 3),
                                 static_cast<std::int64_t>(rng() % (n + 2)), static_cast<std::int64_t>(n)}) {
      std::vector<std::int64_t> first = numpy_argsort_first(v, k);
      const auto kept = static_cast<std::ptrdiff_t>(std::min<std::int64_t>(k, static_cast<std::int64_t>(n)));
      std::vector<std::int64_t> want(full.begin(), full.begin() + kept);
      std::sort(first.begin(), first.end());
      std::sort(want.begin(), want.end());
      ASSERT_EQ(first, want) << "trial " << trial << ", n " << n << ", k " << k << ", pattern " << pattern;
    }
  }
}

}  // namespace
}  // namespace kiln::text
