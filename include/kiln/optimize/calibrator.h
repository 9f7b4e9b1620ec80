// Activation-range calibrators for static int8: each turns the values a tensor took on calibration
// data into a threshold T (symmetric: values are clipped to [-T, T], scale = T / 127).
//   minmax      T = max |x|
//   percentile  T = the upper edge of the histogram bin where the cumulative share of |x| reaches p
//   entropy     TensorRT's KL-divergence calibration over a 2048-bin histogram of |x| on [0, max|x|]:
//               for i in [128, 2048): P = bins[0, i) with the clipped outliers (bins[i, 2048)) added
//               to P[i-1]; Q = bins[0, i) merged into 128 levels (i / 128 bins each, the last level
//               taking the remainder) and expanded back, each level's sum spread evenly over its
//               non-empty bins; both normalised; i* = argmin KL(P‖Q) (first minimum; a bin with
//               P > 0 and Q = 0 makes KL infinite); T = (i* + 0.5) · bin width.
// Reference: tests/golden/make_calibration_golden.py (numpy).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::optimize {

/// Persisted in kiln.json (variant details): never rename.
enum class CalibratorKind { kEntropy, kPercentile, kMinMax };
[[nodiscard]] std::string calibrator_name(CalibratorKind kind);
/// Throws ConfigError naming `flag`, the value and the choices.
[[nodiscard]] CalibratorKind parse_calibrator(const std::string& name, const std::string& flag = "--calibrator");

/// Bins of the |x| histogram (TensorRT's). Default 2048.
inline constexpr int64_t kHistogramBins = 2048;
/// Quantized levels of a symmetric int8 magnitude (0..127).
inline constexpr int64_t kQuantizedLevels = 128;

/// TensorRT's entropy threshold of the histogram `bins` (counts of |x| in equal bins of `bin_width`
/// from 0). Needs at least kQuantizedLevels bins; returns bins.size() · bin_width when every
/// candidate's divergence is infinite, and bin_width / 2 for an empty histogram.
[[nodiscard]] double entropy_threshold(const std::vector<double>& bins, double bin_width);
/// The upper edge of the first bin where the cumulative count reaches percentile / 100 of the total.
[[nodiscard]] double percentile_threshold(const std::vector<double>& bins, double bin_width, double percentile);

/// Collects one tensor's |x| in two passes over the same calibration batches: pass 1 (observe_max)
/// finds max |x|, pass 2 (observe_histogram) fills kHistogramBins bins on [0, max |x|]. minmax needs
/// pass 1 only. Not thread-safe.
class RangeObserver {
 public:
  void observe_max(const torch::Tensor& x);
  void observe_histogram(const torch::Tensor& x);
  [[nodiscard]] double max_abs() const { return max_abs_; }
  [[nodiscard]] const std::vector<double>& histogram() const { return bins_; }
  /// The threshold `kind` picks (percentile used by kPercentile only). Throws ConfigError when the
  /// histogram pass did not run for entropy/percentile.
  [[nodiscard]] double threshold(CalibratorKind kind, double percentile) const;

 private:
  double max_abs_ = 0;
  std::vector<double> bins_;
};

}  // namespace kiln::optimize
