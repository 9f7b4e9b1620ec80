#include "shap_regression.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kiln::explain::detail {
namespace {

// gram[i, j] += w · |{rows set in both bit columns i and j}| for j >= i; columns are `words` 64-bit
// words each. Compiled twice: with the POPCNT instruction where the CPU has it (every x86-64 since
// 2008), and generic otherwise (no -march flags in a default build).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("popcnt", "default")))
#endif
void add_and_counts(const uint64_t* bits, int64_t m, int64_t words, double w, double* gram) {
  for (int64_t i = 0; i < m; ++i) {
    const uint64_t* bi = bits + i * words;
    for (int64_t j = i; j < m; ++j) {
      const uint64_t* bj = bits + j * words;
      int64_t count = 0;
      for (int64_t k = 0; k < words; ++k) count += __builtin_popcountll(bi[k] & bj[k]);
      gram[i * m + j] += w * static_cast<double>(count);
    }
  }
}

// In place: the lower Cholesky factor of the symmetric positive definite [n, n] `a` (row-major;
// the upper triangle is left as it was). False when a pivot is not positive: a singular system.
// A plain loop rather than LAPACK's dpotrf: at Kernel SHAP's sizes (n <= a few hundred) it takes
// about a millisecond, and OpenBLAS's threaded dpotrf leaves its threads spinning (sched_yield)
// for the rest of the explanation, competing with the model on a busy machine.
bool cholesky(double* a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double* aj = a + j * n;
    double d = aj[j];
    for (int64_t k = 0; k < j; ++k) d -= aj[k] * aj[k];
    if (!(d > 0) || !std::isfinite(d)) return false;
    const double ljj = std::sqrt(d);
    aj[j] = ljj;
    for (int64_t i = j + 1; i < n; ++i) {
      double* ai = a + i * n;
      double v = ai[j];
      for (int64_t k = 0; k < j; ++k) v -= ai[k] * aj[k];
      ai[j] = v / ljj;
    }
  }
  return true;
}

// Solves L Lᵀ x = b in place for `r` right-hand sides (b [n, r] row-major).
void cholesky_solve(const double* l, int64_t n, double* b, int64_t r) {
  for (int64_t i = 0; i < n; ++i) {  // L y = b
    for (int64_t k = 0; k < i; ++k) {
      const double lik = l[i * n + k];
      for (int64_t q = 0; q < r; ++q) b[i * r + q] -= lik * b[k * r + q];
    }
    for (int64_t q = 0; q < r; ++q) b[i * r + q] /= l[i * n + i];
  }
  for (int64_t i = n - 1; i >= 0; --i) {  // Lᵀ x = y
    for (int64_t k = i + 1; k < n; ++k) {
      const double lki = l[k * n + i];
      for (int64_t q = 0; q < r; ++q) b[i * r + q] -= lki * b[k * r + q];
    }
    for (int64_t q = 0; q < r; ++q) b[i * r + q] /= l[i * n + i];
  }
}

}  // namespace

Design make_design(const uint8_t* masks, const double* weights, int64_t rows, int64_t m, const double* y, int64_t c) {
  Design d;
  d.m = m;
  d.c = c;
  d.gram.assign(static_cast<std::size_t>(m * m), 0.0);
  d.zwy.assign(static_cast<std::size_t>(m * c), 0.0);
  // U: every present feature of a row adds w·y.
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* z = masks + r * m;
    const double w = weights[r];
    const double* yr = y + r * c;
    for (int64_t i = 0; i < m; ++i) {
      if (!z[i]) continue;
      double* u = d.zwy.data() + i * c;
      for (int64_t k = 0; k < c; ++k) u[k] += w * yr[k];
    }
  }
  // G: rows of equal weight (a whole enumerated size; sampled rows drawn the same number of times)
  // share bit columns.
  std::vector<int64_t> order(static_cast<std::size_t>(rows));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return weights[a] < weights[b]; });
  std::vector<uint64_t> bits;
  for (std::size_t begin = 0; begin < order.size();) {
    std::size_t end = begin;
    const double w = weights[order[begin]];
    while (end < order.size() && weights[order[end]] == w) ++end;
    const auto n = static_cast<int64_t>(end - begin);
    if (n * 16 < m) {  // few rows: pairs of present features directly
      for (std::size_t q = begin; q < end; ++q) {
        const uint8_t* z = masks + order[q] * m;
        for (int64_t i = 0; i < m; ++i) {
          if (!z[i]) continue;
          for (int64_t j = i; j < m; ++j) {
            if (z[j]) d.gram[static_cast<std::size_t>(i * m + j)] += w;
          }
        }
      }
    } else {
      const int64_t words = (n + 63) / 64;
      bits.assign(static_cast<std::size_t>(m * words), 0);
      for (int64_t q = 0; q < n; ++q) {
        const uint8_t* z = masks + order[begin + static_cast<std::size_t>(q)] * m;
        uint64_t* column = bits.data() + q / 64;
        for (int64_t i = 0; i < m; ++i) column[i * words] |= static_cast<uint64_t>(z[i] != 0) << (q % 64);
      }
      add_and_counts(bits.data(), m, words, w, d.gram.data());
    }
    begin = end;
  }
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < i; ++j) d.gram[static_cast<std::size_t>(i * m + j)] = d.gram[static_cast<std::size_t>(j * m + i)];
  }
  return d;
}

void solve_constrained(const Design& d, const std::vector<int64_t>& active, const std::vector<int64_t>& outputs,
                       const double* delta, double* phi) {
  const int64_t m = d.m, c = d.c;
  const auto s = static_cast<int64_t>(active.size());
  const auto nout = static_cast<int64_t>(outputs.size());
  if (nout == 0 || s == 0) return;
  const int64_t l = active.back();
  if (s == 1) {
    for (int64_t k : outputs) phi[l * c + k] = delta[k];
    return;
  }
  const double* g = d.gram.data();
  const double* u = d.zwy.data();
  const int64_t n = s - 1;
  auto a = torch::empty({n, n}, torch::kFloat64);
  auto b = torch::empty({n, nout}, torch::kFloat64);
  double* ap = a.data_ptr<double>();
  double* bp = b.data_ptr<double>();
  const double gll = g[l * m + l];
  for (int64_t p = 0; p < n; ++p) {
    const int64_t i = active[static_cast<std::size_t>(p)];
    const double gil = g[i * m + l];
    for (int64_t q = 0; q < n; ++q) {
      const int64_t j = active[static_cast<std::size_t>(q)];
      ap[p * n + q] = g[i * m + j] - gil - g[j * m + l] + gll;
    }
    for (int64_t o = 0; o < nout; ++o) {
      const int64_t k = outputs[static_cast<std::size_t>(o)];
      bp[p * nout + o] = (u[i * c + k] - gil * delta[k]) - (u[l * c + k] - gll * delta[k]);
    }
  }
  torch::Tensor w;
  torch::Tensor factor = a.clone();
  if (cholesky(factor.data_ptr<double>(), n)) {
    w = b.clone();
    cholesky_solve(factor.data_ptr<double>(), n, w.data_ptr<double>(), nout);
  }
  if (!w.defined() || !torch::isfinite(w).all().item<bool>()) {
    w = torch::linalg_pinv(a, /*rcond=*/1e-10, /*hermitian=*/true).matmul(b).contiguous();  // least norm
  }
  const double* wp = w.data_ptr<double>();
  for (int64_t o = 0; o < nout; ++o) {
    const int64_t k = outputs[static_cast<std::size_t>(o)];
    double sum = 0;
    for (int64_t p = 0; p < n; ++p) {
      const double v = wp[p * nout + o];
      phi[active[static_cast<std::size_t>(p)] * c + k] = v;
      sum += v;
    }
    phi[l * c + k] = delta[k] - sum;
  }
}

}  // namespace kiln::explain::detail
