// Tree-structured Parzen Estimator sampling with Optuna 3.1's defaults and semantics: after
// n_startup_trials random trials, the finished trials are split into the best gamma(n) (below)
// and the rest (above), a Parzen estimator is fitted to each, n_ei_candidates points are drawn from
// the first and the one maximising l(x) / g(x) is proposed. Goldens: tests/golden/make_tpe_golden.py.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kiln/tune/parzen_estimator.h"
#include "kiln/tune/random_sampler.h"
#include "kiln/tune/sampler.h"

namespace kiln::tune {

struct TpeSamplerOptions {
  /// Sample at random until this many trials have finished (complete or pruned). >= 0.
  int n_startup_trials = 10;
  /// Candidates drawn from the good trials' estimator per proposal. >= 1.
  int n_ei_candidates = 24;
  /// Add a prior component to every estimator (see ParzenEstimatorOptions).
  bool consider_prior = true;
  /// Weight of the prior component (> 0).
  double prior_weight = 1.0;
  /// Floor bandwidths at (high - low) / min(100, 1 + components).
  bool consider_magic_clip = true;
  /// Let the domain's ends widen the outermost bandwidths.
  bool consider_endpoints = false;
  /// Model the parameters every finished trial shares jointly (Optuna's multivariate TPE); the
  /// others, and all of them when false, are modelled one at a time.
  bool multivariate = false;
  /// Count running trials as the worst observations (in `above`), so parallel workers spread out.
  bool constant_liar = false;
  /// Normalised continuous densities (see ParzenEstimatorOptions::normalized_density); false
  /// reproduces Optuna 3.1.
  bool normalized_density = false;
  /// Seed of the generator; the same seed and history give the same proposals. None: seeded from
  /// std::random_device.
  std::optional<uint64_t> seed;

  /// Throws ConfigError naming the first option out of range and its value.
  void validate() const;
};

/// Optuna's default_gamma: how many of n finished trials count as good, min(ceil(0.1 n), 25).
[[nodiscard]] int default_tpe_gamma(int n);

/// What TPE fits for one group of parameters (modelled jointly) from a history.
struct TpeFit {
  /// Finished trials (complete with a value, or pruned) among the observations.
  int n_finished = 0;
  /// default_tpe_gamma(n_finished): the size of `below`.
  int n_below = 0;
  /// Trial numbers split into good (below) and the rest (above), each in increasing number; trials
  /// lacking the group's parameters are listed but not modelled.
  std::vector<int64_t> below;
  std::vector<int64_t> above;
  /// The estimators of below (l) and above (g).
  std::optional<ParzenEstimator> l;
  std::optional<ParzenEstimator> g;
};

/// Not thread-safe (one per worker thread, or a lock around it).
class TpeSampler : public Sampler {
 public:
  /// Throws ConfigError for options out of range.
  explicit TpeSampler(TpeSamplerOptions options = {});

  [[nodiscard]] std::map<std::string, double> sample(const SearchSpace& space, const std::vector<Trial>& history,
                                                     Direction direction) override;

  /// The split and estimators TPE uses for `group`, given the study's trials (all states).
  [[nodiscard]] TpeFit fit(const SearchSpace& group, const std::vector<Trial>& history, Direction direction) const;

  /// The parameters of `space` modelled jointly when multivariate: those every finished trial
  /// holds with the same distribution, single-valued ones excluded (Optuna's intersection search
  /// space). Empty before any trial finishes.
  [[nodiscard]] static SearchSpace joint_space(const SearchSpace& space, const std::vector<Trial>& history);

  [[nodiscard]] const TpeSamplerOptions& options() const { return options_; }

 private:
  // Optuna's observation pairs split into below / above: indices into `trials` (the observed
  // trials in increasing number), each in increasing order. Borrowed from the history.
  struct Split {
    std::vector<const Trial*> trials;
    std::vector<std::size_t> below, above;
    int n_finished = 0;
    int n_below = 0;
  };
  [[nodiscard]] Split split(const std::vector<Trial>& history, Direction direction) const;
  [[nodiscard]] TpeFit fit(const SearchSpace& group, const Split& split) const;
  [[nodiscard]] std::map<std::string, double> propose(const SearchSpace& group, const Split& split);

  TpeSamplerOptions options_;
  ParzenEstimatorOptions estimator_options_;
  std::mt19937_64 rng_;
  RandomSampler random_;
};

}  // namespace kiln::tune
