#include "kiln/tune/strategy.h"

#include "kiln/core/error.h"
#include "kiln/tune/random_sampler.h"
#include "kiln/tune/tpe_sampler.h"

namespace kiln::tune {

SamplerKind parse_sampler_kind(const std::string& name) {
  if (name == "tpe") return SamplerKind::kTpe;
  if (name == "random") return SamplerKind::kRandom;
  if (name == "grid") return SamplerKind::kGrid;
  throw ConfigError("sampler: unknown value '" + name + "'; choose one of tpe, random, grid");
}

PrunerKind parse_pruner_kind(const std::string& name) {
  if (name == "median") return PrunerKind::kMedian;
  if (name == "hyperband") return PrunerKind::kHyperband;
  if (name == "none") return PrunerKind::kNone;
  throw ConfigError("pruner: unknown value '" + name + "'; choose one of median, hyperband, none");
}

const char* sampler_name(SamplerKind kind) {
  switch (kind) {
    case SamplerKind::kTpe: return "tpe";
    case SamplerKind::kRandom: return "random";
    case SamplerKind::kGrid: return "grid";
  }
  return "tpe";
}

const char* pruner_name(PrunerKind kind) {
  switch (kind) {
    case PrunerKind::kMedian: return "median";
    case PrunerKind::kHyperband: return "hyperband";
    case PrunerKind::kNone: return "none";
  }
  return "median";
}

PruneFn Strategy::prune_fn() const {
  if (!pruner) return {};
  return [p = pruner.get()](const std::vector<Trial>& all, const Trial& t, Direction d) {
    return p->should_prune(all, t, d);
  };
}

void Strategy::attach(Tuner& tuner) const {
  if (grid) tuner.set_exhausted([g = grid](const std::vector<Trial>& all) { return g->exhausted(all); });
  if (hyperband && !grid) {
    // As Optuna: the sampler learns only from the new trial's bracket. The grid keeps seeing every
    // trial, so that no point is proposed twice (Optuna's grid also picks from the whole study).
    tuner.set_sampler_view([h = hyperband](const std::vector<Trial>& all, int64_t number) {
      Trial next;
      next.number = number;
      return h->bracket_trials(all, next);
    });
  }
}

Strategy make_strategy(const TuneConfig& config, const StrategyOptions& options) {
  Strategy s;
  if (options.sampler != SamplerKind::kGrid) {
    for (const auto& [name, values] : config.grid) {
      s.warnings.push_back(config.path + ": space." + name + ".grid is used only by --sampler grid; --sampler " +
                           sampler_name(options.sampler) +
                           " samples the whole domain (drop the grid values or use --sampler grid)");
    }
  }
  switch (options.sampler) {
    case SamplerKind::kTpe: {
      TpeSamplerOptions o;
      o.seed = options.seed;
      o.constant_liar = options.parallel;  // parallel workers spread out instead of proposing alike
      s.sampler = std::make_unique<TpeSampler>(o);
      break;
    }
    case SamplerKind::kRandom:
      s.sampler = std::make_unique<RandomSampler>(RandomSamplerOptions{options.seed});
      break;
    case SamplerKind::kGrid: {
      GridSamplerOptions o;
      o.seed = options.seed;
      o.values = config.grid;
      auto g = std::make_unique<GridSampler>(config.space, o);
      s.grid = g.get();
      s.sampler = std::move(g);
      break;
    }
  }
  switch (options.pruner) {
    case PrunerKind::kMedian:
      s.pruner = std::make_unique<PercentilePruner>(PercentilePrunerOptions{});
      break;
    case PrunerKind::kHyperband: {
      HyperbandPrunerOptions o;
      o.study_name = options.study_name;
      auto h = std::make_unique<HyperbandPruner>(o);
      s.hyperband = h.get();
      s.pruner = std::move(h);
      break;
    }
    case PrunerKind::kNone:
      break;
  }
  return s;
}

}  // namespace kiln::tune
