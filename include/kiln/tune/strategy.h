// The search strategy of a tuning run: a sampler and a pruner chosen by name (`--sampler`,
// `--pruner`), built from the tune config and wired into the Tuner (grid exhaustion, Hyperband's
// per-bracket sampler view).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/tune/grid_sampler.h"
#include "kiln/tune/hyperband_pruner.h"
#include "kiln/tune/pruner.h"
#include "kiln/tune/sampler.h"
#include "kiln/tune/tune_config.h"
#include "kiln/tune/tuner.h"

namespace kiln::tune {

/// Samplers by persisted name: "tpe", "random", "grid".
enum class SamplerKind { kTpe = 0, kRandom = 1, kGrid = 2 };
/// Pruners by persisted name: "median" (PercentilePruner at 50), "hyperband", "none".
enum class PrunerKind { kMedian = 0, kHyperband = 1, kNone = 2 };

/// Throws ConfigError naming the value and the choices.
[[nodiscard]] SamplerKind parse_sampler_kind(const std::string& name);
[[nodiscard]] PrunerKind parse_pruner_kind(const std::string& name);
[[nodiscard]] const char* sampler_name(SamplerKind kind);
[[nodiscard]] const char* pruner_name(PrunerKind kind);

struct StrategyOptions {
  /// Default kTpe.
  SamplerKind sampler = SamplerKind::kTpe;
  /// Default kMedian.
  PrunerKind pruner = PrunerKind::kMedian;
  /// Sampler seed; none (the default) = seeded at random.
  std::optional<uint64_t> seed;
  /// Whether trials are proposed while others run (several jobs, or workers sharing a storage):
  /// TPE then uses its constant liar so workers spread out. Default false.
  bool parallel = false;
  /// The study's name (Hyperband hashes it with trial numbers to pick brackets). Default "".
  std::string study_name;
};

/// A sampler and an optional pruner, owned together. Not thread-safe (the Tuner locks the sampler).
struct Strategy {
  std::unique_ptr<Sampler> sampler;
  /// Null for PrunerKind::kNone.
  std::unique_ptr<Pruner> pruner;
  /// Set when the sampler is a grid / the pruner is Hyperband (owned by the members above).
  GridSampler* grid = nullptr;
  HyperbandPruner* hyperband = nullptr;
  /// Things a person should know (each a sentence naming the config and the fix), e.g. grid values
  /// in the config that the chosen sampler ignores.
  std::vector<std::string> warnings;

  /// The pruner bound as the Tuner's PruneFn; empty without a pruner. Valid while this lives.
  [[nodiscard]] PruneFn prune_fn() const;
  /// Gives `tuner` the grid's exhaustion test, and (Hyperband without a grid) the sampler view of
  /// the new trial's bracket, as Optuna does. `tuner` must not outlive this.
  void attach(Tuner& tuner) const;
};

/// Builds the strategy for `config`. Throws ConfigError for options out of range and for a grid
/// the config's space cannot make (see GridSampler).
[[nodiscard]] Strategy make_strategy(const TuneConfig& config, const StrategyOptions& options);

}  // namespace kiln::tune
