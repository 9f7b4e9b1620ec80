// Temperature scaling (Guo et al., 2017): one scalar T > 0 that divides a trained model's logits so
// that softmax(logits / T) is calibrated on held-out data. T is fitted by minimising the negative
// log-likelihood on the validation split; the argmax (accuracy, F1) is unchanged.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace kiln::train {

/// The fitted temperature lies in [kMinTemperature, kMaxTemperature].
inline constexpr double kMinTemperature = 1e-3;
inline constexpr double kMaxTemperature = 1e3;

struct TemperatureFit {
  double temperature = 1.0;
  double nll_before = 0;  ///< mean NLL at T = 1
  double nll_after = 0;   ///< mean NLL at the fitted T
  int iterations = 0;
  /// Every example's own logit is strictly the largest: the NLL falls without bound as T -> 0, so
  /// there is no finite optimum. T is then left at 1.
  bool separable = false;
};

/// Fits T on logits [n, C] (any float dtype, any device) and labels in [0, C). The NLL is convex in
/// 1/T, so Newton's method on 1/T (with a backtracking line search) finds the unique optimum (none
/// when the data are separable: see TemperatureFit::separable).
/// Throws DataError for empty input, mismatched sizes, labels out of range or non-finite logits.
[[nodiscard]] TemperatureFit fit_temperature(const torch::Tensor& logits, const std::vector<int64_t>& y);

}  // namespace kiln::train
