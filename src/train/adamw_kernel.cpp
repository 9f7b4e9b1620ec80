#include "adamw_kernel.h"

#include <cmath>

namespace kiln::train {
namespace {

template <typename T>
inline void span(T* __restrict w, T* __restrict m, T* __restrict v, const T* __restrict g, int64_t n,
                 const AdamWCoeffs<T>& c) {
  // One pass: the decay of w_i, then its step, each rounded as torch's two passes round them.
  const T decay = c.has_decay ? c.decay : T(1);
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T mi = m[i] * c.beta1 + c.one_minus_beta1 * gi;
    const T vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const T denom = std::sqrt(vi) / c.sqrt_bc2 + c.eps;
    const T wi = c.has_decay ? w[i] * decay : w[i];
    w[i] = wi + c.neg_step_size * (mi / denom);
  }
}

}  // namespace

// Built for several vector widths; the loader picks the widest the CPU has. The file is compiled
// without contraction into FMA (-ffp-contract=off), so every width computes the same bits.
__attribute__((target_clones("avx512f", "avx2", "default")))
void adamw_span(float* w, float* m, float* v, const float* g, int64_t n, const AdamWCoeffs<float>& c) {
  span(w, m, v, g, n, c);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void adamw_span(double* w, double* m, double* v, const double* g, int64_t n, const AdamWCoeffs<double>& c) {
  span(w, m, v, g, n, c);
}

}  // namespace kiln::train
