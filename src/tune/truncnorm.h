// The standard normal's log-CDF and a truncated normal's mass, inverse CDF and log-density, with
// the same branch structure as Optuna 3.1's _truncnorm (so densities agree to rounding).
// Private to kiln::tune.
#pragma once

namespace kiln::tune::truncnorm {

/// log(Phi(a)), accurate in both tails.
[[nodiscard]] double log_ndtr(double a);
/// log(Phi(b) - Phi(a)) for a <= b.
[[nodiscard]] double log_gauss_mass(double a, double b);
/// The x with log(Phi(x)) = y (y <= 0).
[[nodiscard]] double ndtri_exp(double y);
/// Inverse CDF at q in [0, 1] of the standard normal truncated to [a, b] (NaN when a == b).
[[nodiscard]] double ppf(double q, double a, double b);

}  // namespace kiln::tune::truncnorm
