// Private: Kernel SHAP's weighted least squares from its sufficient statistics. The coalitions are
// 0/1 rows z_r with kernel weights w_r; the fit needs only G = Zᵀ W Z [M, M] and U = Zᵀ W Y [M, C]
// (Y = f(z) − f(∅)), computed from bit columns (one AND + popcount per 64 coalitions and feature
// pair, rows of equal weight together) instead of a dense float64 matrix product; the constrained
// system (efficiency Σφ = f(x) − f(∅) by eliminating one feature) is solved with one Cholesky
// factorisation for all outputs. No BLAS/LAPACK call on the usual path (see cholesky()).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace kiln::explain::detail {

struct Design {
  int64_t m = 0;  ///< features
  int64_t c = 0;  ///< outputs
  std::vector<double> gram;  ///< G = Zᵀ W Z, [m, m] row-major
  std::vector<double> zwy;   ///< U = Zᵀ W Y, [m, c] row-major
};

/// `masks` [rows, m] bytes (0/1), `weights` [rows], `y` [rows, c] float64 (f(z) − f(∅)).
[[nodiscard]] Design make_design(const uint8_t* masks, const double* weights, int64_t rows, int64_t m, const double* y,
                                 int64_t c);

/// The constrained weighted least squares restricted to `active` features (distinct indices; the
/// others get 0): for each output k in `outputs`, φ minimising Σ w_r (y_rk − z_r·φ)² subject to
/// Σ φ = delta[k], written into phi [m, c] (row-major; other entries untouched). One Cholesky
/// factorisation shared by the outputs; a singular system (fewer distinct coalitions than
/// features) falls back to the least-norm solution (pseudo-inverse).
void solve_constrained(const Design& d, const std::vector<int64_t>& active, const std::vector<int64_t>& outputs,
                       const double* delta, double* phi);

}  // namespace kiln::explain::detail
