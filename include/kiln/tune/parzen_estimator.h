// The Parzen estimator TPE fits to the good (below) and bad (above) trials: a weighted mixture of
// truncated normals per numeric parameter (one component per observation plus a prior) and of
// smoothed one-hot distributions per categorical one. Semantics are Optuna 3.1's _ParzenEstimator
// (goldens: tests/golden/make_tpe_golden.py).
#pragma once

#include <cstddef>
#include <optional>
#include <random>
#include <vector>

#include "kiln/tune/study.h"

namespace kiln::tune {

struct ParzenEstimatorOptions {
  /// Add a prior component (centre of the domain, bandwidth = its width) to every mixture.
  bool consider_prior = true;
  /// Weight of the prior component before normalisation (> 0); also the categorical smoothing.
  double prior_weight = 1.0;
  /// Floor the bandwidths at (high - low) / min(100, 1 + components).
  bool consider_magic_clip = true;
  /// Let the domain's ends widen the bandwidths of the outermost components.
  bool consider_endpoints = false;
  /// Joint estimator: every parameter shares one bandwidth rule (Scott's rule), components are
  /// whole observations. Otherwise each parameter's bandwidths come from its neighbours.
  bool multivariate = false;
  /// Divide each continuous component's density by its bandwidth (a normalised density). False
  /// reproduces Optuna 3.1, whose truncated-normal log-density omits the -log(sigma) term.
  bool normalized_density = false;
};

/// Mixture weights for n observations, oldest first: ones below 25, otherwise a linear ramp from
/// 1/n over the n - 25 oldest and ones for the 25 newest (Optuna's default_weights).
[[nodiscard]] std::vector<double> default_tpe_weights(std::size_t n);

/// Immutable once built; const methods are thread-safe.
class ParzenEstimator {
 public:
  /// `observations[p]` holds parameter p's internal values (as in Trial::params; categorical choice
  /// indices), one per observation, oldest first; every column has the same length (may be 0).
  /// `space` lists the parameters in the same order. Throws ConfigError on mismatched sizes.
  ParzenEstimator(const std::vector<std::vector<double>>& observations, const SearchSpace& space,
                  const ParzenEstimatorOptions& options);

  [[nodiscard]] std::size_t n_params() const { return params_.size(); }
  [[nodiscard]] std::size_t n_observations() const { return n_observations_; }
  /// Normalised component weights (observations, then the prior when present).
  [[nodiscard]] const std::vector<double>& weights() const { return weights_; }
  /// Component centres and bandwidths of numeric parameter p, in the estimator's space (log for log
  /// parameters); empty for categorical parameters.
  [[nodiscard]] const std::vector<double>& mus(std::size_t p) const { return params_.at(p).mus; }
  [[nodiscard]] const std::vector<double>& sigmas(std::size_t p) const { return params_.at(p).sigmas; }
  /// Truncation bounds of numeric parameter p (half a step outside the grid for discrete ones).
  [[nodiscard]] double low(std::size_t p) const { return params_.at(p).low; }
  [[nodiscard]] double high(std::size_t p) const { return params_.at(p).high; }
  /// The discretisation step of numeric parameter p (ints and stepped floats), if any.
  [[nodiscard]] std::optional<double> step(std::size_t p) const { return params_.at(p).q; }
  /// Per component (rows) the probability of each choice (columns) of categorical parameter p.
  [[nodiscard]] const std::vector<std::vector<double>>& categorical_weights(std::size_t p) const {
    return params_.at(p).categorical;
  }

  /// `size` draws, one column per parameter, in internal representation (on the step grid, within
  /// the domain).
  [[nodiscard]] std::vector<std::vector<double>> sample(std::mt19937_64& rng, std::size_t size) const;
  /// Log-density (log-probability for discrete parameters) of each point; `points[p][i]` is
  /// parameter p of point i, in internal representation.
  [[nodiscard]] std::vector<double> log_pdf(const std::vector<std::vector<double>>& points) const;

 private:
  struct Param {
    Distribution dist;
    bool is_categorical = false;
    double low = 0, high = 0;
    std::optional<double> q;
    std::vector<double> mus, sigmas;
    std::vector<double> log_mass;  // per component: log of its truncated-normal mass in [low, high]
    std::vector<std::vector<double>> categorical;
  };
  [[nodiscard]] double to_model(const Param& p, double internal) const;
  [[nodiscard]] double from_model(const Param& p, double x) const;

  std::size_t n_observations_ = 0;
  ParzenEstimatorOptions options_;
  std::vector<double> weights_;
  std::vector<double> log_weights_;
  std::vector<Param> params_;
};

}  // namespace kiln::tune
