// The AdamW element update on raw arrays, in its own translation unit so it can be compiled for
// vectorisation (no errno from sqrt, no LibTorch headers). Private to kiln_train.
#pragma once

#include <cstdint>

namespace kiln::train {

/// AdamW coefficients rounded to the parameter's dtype T, as torch's ops round their scalars.
template <typename T>
struct AdamWCoeffs {
  T decay;            ///< 1 - lr * weight_decay
  T beta1, one_minus_beta1, beta2, one_minus_beta2;
  T sqrt_bc2;         ///< sqrt(1 - beta2^step)
  T eps;
  T neg_step_size;    ///< -lr / (1 - beta1^step)
  bool has_decay;     ///< weight_decay != 0
};

/// For i < n, in torch's order: w *= decay; m = m*b1 + (1-b1)*g; v = v*b2 + (1-b2)*g*g;
/// w += neg_step_size * m / (sqrt(v) / sqrt_bc2 + eps). The arrays must not overlap.
void adamw_span(float* w, float* m, float* v, const float* g, int64_t n, const AdamWCoeffs<float>& c);
void adamw_span(double* w, double* m, double* v, const double* g, int64_t n, const AdamWCoeffs<double>& c);

}  // namespace kiln::train
