// Successive halving and Hyperband pruning with Optuna 3.1's semantics: a trial reaching a rung
// (min_resource * reduction_factor^(min_early_stopping_rate + rung) steps) continues only if its
// value there is among the top 1/reduction_factor of the values trials reported at that rung.
// Hyperband runs several successive-halving brackets (different early-stopping rates) and assigns
// each trial to one by hashing the study name and trial number (crc32, as Optuna does); trials only
// compete within their bracket. Goldens: tests/golden/make_hyperband_golden.py.
//
// Optuna stores each trial's rung values as it passes the rungs. Kiln's pruners are stateless: a
// trial's value at a rung is its intermediate value at the first reported step at or after the
// rung's step, which is what Optuna records when the pruner is asked after every report (the
// tuning loop does). A pruned trial is taken to have stopped at the lowest rung it reached at its
// last step. With `auto` resources Optuna fixes them at its first decision and ignores rungs passed
// before that; Kiln recomputes them from the current history and counts every rung.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/tune/pruner.h"

namespace kiln::tune {

struct SuccessiveHalvingPrunerOptions {
  /// Steps a trial runs before its first rung (>= 1). None: `auto`, max(last step of the completed
  /// trials / 100, 1) (integer division), and no pruning until a trial completes.
  std::optional<int64_t> min_resource;
  /// Each rung keeps the top 1/reduction_factor of the trials reaching it (>= 2).
  int reduction_factor = 4;
  /// The first rung sits at min_resource * reduction_factor^min_early_stopping_rate steps (>= 0).
  int min_early_stopping_rate = 0;
  /// A trial is pruned at a rung until more than this many trials (itself included) reached it
  /// (>= 0; needs an explicit min_resource when > 0).
  int bootstrap_count = 0;

  /// Throws ConfigError naming the first option out of range and its value.
  void validate() const;
};

/// Optuna's SuccessiveHalvingPruner (asynchronous successive halving).
class SuccessiveHalvingPruner : public Pruner {
 public:
  explicit SuccessiveHalvingPruner(SuccessiveHalvingPrunerOptions options);

  [[nodiscard]] bool should_prune(const std::vector<Trial>& study, const Trial& trial,
                                  Direction direction) const override;

  [[nodiscard]] const SuccessiveHalvingPrunerOptions& options() const { return options_; }

 private:
  SuccessiveHalvingPrunerOptions options_;
};

struct HyperbandPrunerOptions {
  /// Steps before the first rung of the most aggressive bracket (>= 1).
  int64_t min_resource = 1;
  /// Steps a trial runs at most (>= min_resource). None: `auto`, the last step of the completed
  /// trials + 1, and no pruning until a trial completes.
  std::optional<int64_t> max_resource;
  /// Each rung keeps the top 1/reduction_factor of its trials (>= 2).
  int reduction_factor = 3;
  /// As SuccessiveHalvingPrunerOptions::bootstrap_count (>= 0; needs an explicit max_resource when > 0).
  int bootstrap_count = 0;
  /// The study's name: hashed with the trial number to choose the trial's bracket.
  std::string study_name;

  /// Throws ConfigError naming the first option out of range and its value.
  void validate() const;
};

/// Optuna's HyperbandPruner: floor(log_rf(max_resource / min_resource)) + 1 brackets, bracket b a
/// successive-halving pruner with min_early_stopping_rate b, trials spread over brackets in
/// proportion to ceil(n_brackets * rf^s / (s + 1)), s = n_brackets - 1 - b.
class HyperbandPruner : public Pruner {
 public:
  explicit HyperbandPruner(HyperbandPrunerOptions options);

  [[nodiscard]] bool should_prune(const std::vector<Trial>& study, const Trial& trial,
                                  Direction direction) const override;

  /// The number of brackets, once the resources are known (none before a trial completes with
  /// `auto` max_resource).
  [[nodiscard]] std::optional<int> n_brackets(const std::vector<Trial>& study) const;
  /// The bracket of trial `number` (0 while the brackets are not known yet).
  [[nodiscard]] int bracket(const std::vector<Trial>& study, int64_t number) const;
  /// The trials of `trial`'s bracket: what a sampler should see for it (Optuna filters the study
  /// given to samplers this way when Hyperband prunes).
  [[nodiscard]] std::vector<Trial> bracket_trials(const std::vector<Trial>& study, const Trial& trial) const;

  [[nodiscard]] const HyperbandPrunerOptions& options() const { return options_; }

 private:
  struct Brackets {
    int n = 0;
    std::vector<int64_t> budgets;
    int64_t total = 0;
  };
  [[nodiscard]] std::optional<Brackets> brackets(const std::vector<Trial>& study) const;
  [[nodiscard]] int bracket_of(const Brackets& b, int64_t number) const;

  HyperbandPrunerOptions options_;
};

/// CRC-32 (zlib's, as Python's binascii.crc32) of `bytes`.
[[nodiscard]] uint32_t crc32(const std::string& bytes);

}  // namespace kiln::tune
