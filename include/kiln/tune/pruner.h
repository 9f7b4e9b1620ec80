// Pruners decide, from the intermediate values trials report each epoch, whether a running trial
// should stop early. Semantics are Optuna 3.1's (goldens: tests/golden/make_pruner_golden.py).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "kiln/tune/study.h"

namespace kiln::tune {

/// Decides whether a running trial stops early. Implementations are stateless: a decision depends
/// only on its arguments, so any worker holding the same history decides the same. Const methods
/// are thread-safe.
class Pruner {
 public:
  virtual ~Pruner() = default;
  /// Whether `trial` (running, judged at its last reported step) should be pruned, given every
  /// trial of the study (`study`, all states; the judged trial may be among them).
  [[nodiscard]] virtual bool should_prune(const std::vector<Trial>& study, const Trial& trial,
                                          Direction direction) const = 0;
};

/// Never prunes.
class NopPruner : public Pruner {
 public:
  [[nodiscard]] bool should_prune(const std::vector<Trial>& study, const Trial& trial,
                                  Direction direction) const override;
};

struct PercentilePrunerOptions {
  /// Prune when the trial's best value so far is worse than this percentile of the completed
  /// trials' values at the same step (50 = median). In [0, 100].
  double percentile = 50.0;
  /// No pruning until this many trials have completed.
  int n_startup_trials = 5;
  /// No pruning before this step.
  int64_t n_warmup_steps = 0;
  /// Check every this many steps after the warm-up (>= 1).
  int64_t interval_steps = 1;
  /// No pruning unless at least this many completed trials reported the current step (>= 1).
  int n_min_trials = 1;
};

/// Optuna's PercentilePruner; MedianPruner is its percentile 50 with the defaults above.
/// Throws ConfigError for options out of range, naming the option.
class PercentilePruner : public Pruner {
 public:
  explicit PercentilePruner(PercentilePrunerOptions options);

  /// Only completed trials of `study` count.
  [[nodiscard]] bool should_prune(const std::vector<Trial>& study, const Trial& trial,
                                  Direction direction) const override;

  [[nodiscard]] const PercentilePrunerOptions& options() const { return options_; }

 private:
  PercentilePrunerOptions options_;
};

/// numpy.nanpercentile(values, q) with its default linear interpolation; NaN when no value is a number.
[[nodiscard]] double nan_percentile(std::vector<double> values, double q);

}  // namespace kiln::tune
