// Which parameters mattered: each parameter's share of the variance of the objective explained by
// its marginal means (eta squared, the "variance of marginal means" method), normalized to sum to 1.
#pragma once

#include <string>
#include <vector>

#include "kiln/tune/study.h"

namespace kiln::tune {

struct ParamImportance {
  std::string name;
  /// In [0, 1]; the importances of one study sum to 1 (all 0 when the values do not vary).
  double importance = 0;
};

struct ImportanceOptions {
  /// Numeric parameters are split into at most this many equal-count bins of their sampled values
  /// (>= 2); a parameter with at most this many distinct values gets one bin per value, and a
  /// categorical one bin per choice. Default 4.
  int bins = 4;
};

/// For each parameter of `space`, over the complete trials holding it: group the trials by bin,
/// and take sum_b n_b (mean_b - mean)^2 / sum_i (y_i - mean)^2, the share of the objective's
/// variance explained by the parameter's marginal means. Normalized over the parameters and sorted
/// by decreasing importance (ties: by name). Empty with fewer than 3 complete trials. Unlike
/// fANOVA this looks at one parameter at a time, so interactions are not credited to anyone; it
/// is exact, cheap and deterministic.
[[nodiscard]] std::vector<ParamImportance> param_importances(const std::vector<Trial>& trials, const SearchSpace& space,
                                                             const ImportanceOptions& options = {});

}  // namespace kiln::tune
