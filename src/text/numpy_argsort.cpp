#include "numpy_argsort.h"

#include <algorithm>
#include <utility>

namespace kiln::text {
namespace {

using Index = std::int64_t;
constexpr Index kSmallQuicksort = 15;

inline bool less(double a, double b) { return a < b; }

int msb(Index n) {
  int depth = 0;
  while (n >>= 1) ++depth;
  return depth;
}

void aheapsort(const double* v, Index* tosort, Index n) {
  Index* a = tosort - 1;  // 1-based heap
  Index i, j, l, tmp;
  for (l = n >> 1; l > 0; --l) {
    tmp = a[l];
    for (i = l, j = l << 1; j <= n;) {
      if (j < n && less(v[a[j]], v[a[j + 1]])) j += 1;
      if (less(v[tmp], v[a[j]])) {
        a[i] = a[j];
        i = j;
        j += j;
      } else {
        break;
      }
    }
    a[i] = tmp;
  }
  for (; n > 1;) {
    tmp = a[n];
    a[n] = a[1];
    n -= 1;
    for (i = 1, j = 2; j <= n;) {
      if (j < n && less(v[a[j]], v[a[j + 1]])) j++;
      if (less(v[tmp], v[a[j]])) {
        a[i] = a[j];
        i = j;
        j += j;
      } else {
        break;
      }
    }
    a[i] = tmp;
  }
}

/// numpy's partition of [pl, pr] (more than kSmallQuicksort + 1 entries) around the median of
/// its first, middle and last values; returns where the pivot lands.
Index* partition(const double* v, Index* pl, Index* pr) {
  Index* pm = pl + ((pr - pl) >> 1);
  if (less(v[*pm], v[*pl])) std::swap(*pm, *pl);
  if (less(v[*pr], v[*pm])) std::swap(*pr, *pm);
  if (less(v[*pm], v[*pl])) std::swap(*pm, *pl);
  const double vp = v[*pm];
  Index* pi = pl;
  Index* pj = pr - 1;
  std::swap(*pm, *pj);
  for (;;) {
    do {
      ++pi;
    } while (less(v[*pi], vp));
    do {
      --pj;
    } while (less(vp, v[*pj]));
    if (pi >= pj) break;
    std::swap(*pi, *pj);
  }
  std::swap(*pi, *(pr - 1));
  return pi;
}

/// numpy's insertion sort of [pl, pr].
void insertion_sort(const double* v, Index* pl, Index* pr) {
  for (Index* pi = pl + 1; pi <= pr; ++pi) {
    const Index vi = *pi;
    const double vp = v[vi];
    Index* pj = pi;
    Index* pk = pi - 1;
    while (pj > pl && less(vp, v[*pk])) *pj-- = *pk--;
    *pj = vi;
  }
}

}  // namespace

std::vector<Index> numpy_argsort(const std::vector<double>& values) {
  const Index num = static_cast<Index>(values.size());
  std::vector<Index> order(values.size());
  for (Index k = 0; k < num; ++k) order[k] = k;
  if (num < 2) return order;
  const double* v = values.data();
  Index* pl = order.data();
  Index* pr = pl + num - 1;
  Index* stack[128];
  Index** sptr = stack;
  int depth[128];
  int* psdepth = depth;
  int cdepth = msb(num) * 2;
  for (;;) {
    if (cdepth < 0) {
      aheapsort(v, pl, pr - pl + 1);
      goto stack_pop;
    }
    while ((pr - pl) > kSmallQuicksort) {
      Index* pi = partition(v, pl, pr);
      if (pi - pl < pr - pi) {
        *sptr++ = pi + 1;
        *sptr++ = pr;
        pr = pi - 1;
      } else {
        *sptr++ = pl;
        *sptr++ = pi - 1;
        pl = pi + 1;
      }
      *psdepth++ = --cdepth;
    }
    insertion_sort(v, pl, pr);
  stack_pop:
    if (sptr == stack) break;
    pr = *(--sptr);
    pl = *(--sptr);
    cdepth = *(--psdepth);
  }
  return order;
}

std::vector<Index> numpy_argsort_first(const std::vector<double>& values, Index k) {
  const Index num = static_cast<Index>(values.size());
  k = std::max<Index>(0, std::min(k, num));
  std::vector<Index> order(values.size());
  for (Index i = 0; i < num; ++i) order[i] = i;
  // numpy_argsort's steps on the ranges that hold both a position below k and one at k or above;
  // a range wholly on one side ends with the same members there, whatever its order (ranges are
  // sorted independently, each from its own depth). One such range at a time: a quickselect.
  if (k > 0 && k < num) {
    const double* v = values.data();
    Index* base = order.data();
    Index* pl = base;
    Index* pr = base + num - 1;
    const Index* const boundary = base + k;  // the first position not kept
    auto straddles = [&](const Index* a, const Index* b) { return a < boundary && b >= boundary; };
    int cdepth = msb(num) * 2;
    // Each pass of this loop starts a range as numpy starts one it pops off its stack (the first
    // range too): with the depth check.
    for (bool more = true; more;) {
      more = false;
      if (cdepth < 0) {
        aheapsort(v, pl, pr - pl + 1);
        break;
      }
      bool settled = false;
      while ((pr - pl) > kSmallQuicksort) {
        Index* pi = partition(v, pl, pr);
        --cdepth;
        // numpy goes on with the smaller side (no depth check) and pushes the larger one.
        Index *small_l, *small_r, *large_l, *large_r;
        if (pi - pl < pr - pi) {
          small_l = pl, small_r = pi - 1, large_l = pi + 1, large_r = pr;
        } else {
          small_l = pi + 1, small_r = pr, large_l = pl, large_r = pi - 1;
        }
        if (straddles(small_l, small_r)) {
          pl = small_l;
          pr = small_r;
          continue;
        }
        if (straddles(large_l, large_r)) {
          pl = large_l;
          pr = large_r;
          more = true;  // as popped later, with this depth
        }
        settled = true;
        break;
      }
      if (!settled) insertion_sort(v, pl, pr);
    }
  }
  order.resize(static_cast<std::size_t>(k));
  return order;
}

}  // namespace kiln::text
