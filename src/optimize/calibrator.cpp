#include "kiln/optimize/calibrator.h"

#include <cmath>
#include <limits>

#include "kiln/core/error.h"

namespace kiln::optimize {

std::string calibrator_name(CalibratorKind kind) {
  switch (kind) {
    case CalibratorKind::kEntropy: return "entropy";
    case CalibratorKind::kPercentile: return "percentile";
    case CalibratorKind::kMinMax: return "minmax";
  }
  return "entropy";
}

CalibratorKind parse_calibrator(const std::string& name, const std::string& flag) {
  if (name == "entropy") return CalibratorKind::kEntropy;
  if (name == "percentile") return CalibratorKind::kPercentile;
  if (name == "minmax") return CalibratorKind::kMinMax;
  throw ConfigError(flag + " must be entropy, percentile or minmax, got '" + name + "'");
}

double entropy_threshold(const std::vector<double>& bins, double bin_width) {
  const auto n = static_cast<int64_t>(bins.size());
  if (n < kQuantizedLevels) {
    throw ConfigError("entropy calibration needs at least " + std::to_string(kQuantizedLevels) + " histogram bins, got " +
                      std::to_string(n));
  }
  double total = 0;
  for (const double b : bins) total += b;
  if (total <= 0) return 0.5 * bin_width;
  // suffix[i] = sum of bins[i, n): the outliers clipped when keeping i bins.
  std::vector<double> suffix(static_cast<std::size_t>(n) + 1, 0.0);
  for (int64_t i = n - 1; i >= 0; --i) suffix[i] = suffix[i + 1] + bins[i];

  double best = std::numeric_limits<double>::infinity();
  int64_t best_i = -1;
  std::vector<double> p, q;
  for (int64_t i = kQuantizedLevels; i < n; ++i) {
    p.assign(bins.begin(), bins.begin() + i);
    p[i - 1] += suffix[i];
    q.assign(static_cast<std::size_t>(i), 0.0);
    const int64_t merged = i / kQuantizedLevels;
    for (int64_t j = 0; j < kQuantizedLevels; ++j) {
      const int64_t start = j * merged;
      const int64_t stop = j == kQuantizedLevels - 1 ? i : start + merged;
      double sum = 0;
      int64_t nonzero = 0;
      for (int64_t k = start; k < stop; ++k) {
        sum += bins[k];
        nonzero += bins[k] != 0;
      }
      if (nonzero == 0) continue;
      const double level = sum / static_cast<double>(nonzero);
      for (int64_t k = start; k < stop; ++k) {
        if (bins[k] != 0) q[k] = level;
      }
    }
    double p_sum = 0, q_sum = 0;
    for (int64_t k = 0; k < i; ++k) {
      p_sum += p[k];
      q_sum += q[k];
    }
    if (p_sum <= 0 || q_sum <= 0) continue;
    double kl = 0;
    for (int64_t k = 0; k < i; ++k) {
      if (p[k] == 0) continue;
      if (q[k] == 0) {
        kl = std::numeric_limits<double>::infinity();
        break;
      }
      const double pk = p[k] / p_sum, qk = q[k] / q_sum;
      kl += pk * std::log(pk / qk);
    }
    if (kl < best) {
      best = kl;
      best_i = i;
    }
  }
  if (best_i < 0) return static_cast<double>(n) * bin_width;
  return (static_cast<double>(best_i) + 0.5) * bin_width;
}

double percentile_threshold(const std::vector<double>& bins, double bin_width, double percentile) {
  if (!(percentile > 0 && percentile <= 100)) {
    throw ConfigError("percentile must be in (0, 100], got " + std::to_string(percentile));
  }
  double total = 0;
  for (const double b : bins) total += b;
  if (total <= 0) return bin_width;
  const double target = total * percentile / 100.0;
  double cum = 0;
  for (std::size_t k = 0; k < bins.size(); ++k) {
    cum += bins[k];
    if (cum >= target) return static_cast<double>(k + 1) * bin_width;
  }
  return static_cast<double>(bins.size()) * bin_width;
}

void RangeObserver::observe_max(const torch::Tensor& x) {
  if (x.numel() == 0) return;
  max_abs_ = std::max(max_abs_, x.detach().abs().max().item<double>());
}

void RangeObserver::observe_histogram(const torch::Tensor& x) {
  if (bins_.empty()) bins_.assign(kHistogramBins, 0.0);
  if (x.numel() == 0 || max_abs_ <= 0) {
    bins_[0] += static_cast<double>(x.numel());
    return;
  }
  // histc's last bin is closed on the right: max |x| itself lands in bin 2047.
  const auto h = torch::histc(x.detach().abs().to(torch::kFloat32), kHistogramBins, 0.0, max_abs_).to(torch::kDouble);
  const auto* d = h.data_ptr<double>();
  for (int64_t k = 0; k < kHistogramBins; ++k) bins_[k] += d[k];
}

double RangeObserver::threshold(CalibratorKind kind, double percentile) const {
  if (kind == CalibratorKind::kMinMax) return max_abs_;
  if (bins_.empty()) throw ConfigError("calibration: the histogram pass did not run before threshold()");
  const double width = max_abs_ / static_cast<double>(kHistogramBins);
  if (width <= 0) return 0;
  return kind == CalibratorKind::kEntropy ? entropy_threshold(bins_, width) : percentile_threshold(bins_, width, percentile);
}

}  // namespace kiln::optimize
