// Kernel SHAP (Lundberg & Lee 2017) as the shap package's KernelExplainer computes it, on any
// value function over coalitions of M features: Shapley-kernel weights (M−1)/(C(M,|z|)·|z|·(M−|z|)),
// whole subset sizes enumerated from the most weighted (paired with their complements) while the
// budget allows, the rest sampled by size then uniformly within a size (pairs again), and a
// weighted least-squares fit with the efficiency constraint base + Σφ = f(x) enforced exactly (one
// feature eliminated). With 2^M − 2 ≤ nsamples every coalition is enumerated and φ are the exact
// Shapley values. Optional L1 feature selection first, per output, as shap's l1_reg
// ("num_features(K)": the first K features least angle regression adds; "aic"/"bic": the lasso
// path's step LassoLarsIC picks); the unselected features get 0 (none selected: all 0, as shap).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

namespace kiln::explain {

/// Outputs of the model on coalitions: `masks` is [n, M] bool (true = the feature is present),
/// the result [n, C] float64 (one column per output). Called a few times per explanation with
/// many rows at once so the model runs batched.
using CoalitionValue = std::function<torch::Tensor(const torch::Tensor& masks)>;

/// shap's l1_reg values: never renumber (CLI --l1 names them: none, num_features(K), aic, bic).
enum class L1Selection { kNone, kNumFeatures, kAic, kBic };

struct KernelShapOptions {
  /// Coalitions to evaluate (besides the empty and the full one); 0 = shap's default 2M + 2048.
  /// Clamped to 2^M − 2, which enumerates every coalition (exact Shapley values). Default 0.
  int64_t nsamples = 0;
  /// Seed of the sampler (std::mt19937_64): the same seed gives the same values. Default 0.
  uint64_t seed = 0;
  /// L1 feature selection before the least squares (shap's l1_reg). Default kNone.
  L1Selection l1 = L1Selection::kNone;
  /// Features kept by kNumFeatures, >= 1 (more than M keeps all). Default 0 (unused).
  int64_t l1_features = 0;

  /// Throws ConfigError naming "nsamples" when negative, "l1" when kNumFeatures keeps < 1.
  void validate() const;
};

/// Sets options.l1 (and l1_features) from "none", "num_features(K)", "aic" or "bic"; throws
/// ConfigError naming `field`, the value and the choices.
void parse_l1(const std::string& text, KernelShapOptions& options, const std::string& field = "l1");

struct ShapValues {
  torch::Tensor values;  ///< [M, C] float64
  torch::Tensor base;    ///< [C] f(empty coalition)
  torch::Tensor output;  ///< [C] f(full coalition)
  int64_t evaluations = 0;  ///< rows the value function computed, the empty and full ones included
  bool exact = false;       ///< every coalition was enumerated
};

/// Kernel SHAP for `features` (M >= 0) features. Throws what `value` throws.
[[nodiscard]] ShapValues kernel_shap(int64_t features, const CoalitionValue& value,
                                     const KernelShapOptions& options = {});

/// Exact Owen values for the balanced binary hierarchy over M features in order (each node splits
/// its contiguous span into ⌈n/2⌉ + ⌊n/2⌋): for a feature at depth d, the average over the 2^d
/// ways of including or excluding each sibling subtree on its path of f(S ∪ i) − f(S). O(M²)
/// evaluations, batched; additive (Σφ = f(full) − f(empty)).
[[nodiscard]] ShapValues owen_values(int64_t features, const CoalitionValue& value);

}  // namespace kiln::explain
