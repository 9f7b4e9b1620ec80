// Private: least angle regression (Efron et al. 2004) as scikit-learn 1.2's lars_path computes it
// (sklearn/linear_model/_least_angle.py, _lars_path_solver with a precomputed Gram matrix), and
// LassoLarsIC's choice on the lasso path (AIC/BIC with the noise variance of the OLS fit), for
// Kernel SHAP's L1 feature selection (shap's l1_reg "num_features(k)", "aic", "bic").
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace kiln::explain::detail {

struct LarsPath {
  std::vector<double> alphas;             ///< per step: the largest |correlation| / n_samples
  std::vector<int64_t> active;            ///< active features at the end, in the order they entered
  std::vector<std::vector<double>> coefs;  ///< per step (the first all zeros): the coefficients
};

/// lars_path(X, y, method="lar"|"lasso", max_iter) from gram = XᵀX [p, p], xy = Xᵀy [p] and the
/// number of rows of X (float64 tensors).
[[nodiscard]] LarsPath lars_path(const torch::Tensor& gram, const torch::Tensor& xy, int64_t n_samples, bool lasso,
                                 int64_t max_iter);

/// The features (ascending) with a non-zero coefficient in make_pipeline(StandardScaler(with_mean=
/// False), LassoLarsIC(criterion)).fit(x, y): columns scaled to unit variance, x and y centred,
/// the lasso path, and the step minimising n log(2π σ²) + RSS/σ² + c·df (c = 2 for AIC, log n for
/// BIC; σ² from the OLS residuals over n − p − 1). Throws ConfigError when x has no more rows than
/// columns + 1 (scikit-learn's condition for estimating σ²).
[[nodiscard]] std::vector<int64_t> lasso_lars_ic(const torch::Tensor& x, const torch::Tensor& y, bool bic);

}  // namespace kiln::explain::detail
