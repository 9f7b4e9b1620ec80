// Small facts about a Distribution that samplers share. Private to kiln::tune.
#pragma once

#include <cmath>
#include <optional>

#include "kiln/tune/study.h"

namespace kiln::tune {

/// The step of a numeric distribution (ints default to 1); none for continuous floats and
/// categoricals.
[[nodiscard]] inline std::optional<double> step_of(const Distribution& d) {
  if (d.kind == Distribution::Kind::kCategorical) return std::nullopt;
  if (d.kind == Distribution::Kind::kInt) return d.step.value_or(1.0);
  return d.step;
}

/// The largest value of the domain: `high`, or the last grid point at or below it when the range
/// is not a multiple of the step (as Optuna adjusts it, treating near-multiples as multiples).
[[nodiscard]] inline double grid_high(const Distribution& d) {
  const auto st = step_of(d);
  if (!st || d.log) return d.high;
  const double k = (d.high - d.low) / *st;
  const double kr = std::round(k);
  if (std::fabs(k - kr) <= 1e-9 * std::fmax(1.0, std::fabs(k))) return d.high;
  return std::floor(k) * *st + d.low;
}

/// np.round: halves to even (the default floating-point rounding mode).
[[nodiscard]] inline double round_half_even(double x) { return std::nearbyint(x); }

/// The internal value of a single-valued distribution.
[[nodiscard]] inline double single_value(const Distribution& d) {
  return d.kind == Distribution::Kind::kCategorical ? 0.0 : d.low;
}

}  // namespace kiln::tune
