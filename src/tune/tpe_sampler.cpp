#include "kiln/tune/tpe_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "distribution_math.h"
#include "kiln/core/error.h"

namespace kiln::tune {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Optuna's ranking key of an observation: (-step, signed value), compared lexicographically;
// complete trials have step -inf, running ones (constant liar) +inf.
struct Score {
  double step;
  double value;
};

// numpy's float ordering: NaN after every number.
bool less_nan_last(double a, double b) { return a < b || (std::isnan(b) && !std::isnan(a)); }

bool score_less(const Score& a, const Score& b) {
  if (less_nan_last(a.step, b.step)) return true;
  if (less_nan_last(b.step, a.step)) return false;
  return less_nan_last(a.value, b.value);
}

// The trial's value for a parameter when it is usable in `d` (NaN otherwise: not modelled).
double usable_value(const Trial& t, const std::string& name, const Distribution& d) {
  const auto it = t.params.find(name);
  if (it == t.params.end()) return kNaN;
  const double v = it->second;
  if (!std::isfinite(v)) return kNaN;
  if (d.kind == Distribution::Kind::kCategorical && (v < 0 || v >= static_cast<double>(d.choices.size()))) return kNaN;
  if (d.log && v <= 0) return kNaN;
  return v;
}

std::vector<const Trial*> by_number(const std::vector<Trial>& history) {
  std::vector<const Trial*> out;
  out.reserve(history.size());
  for (const auto& t : history) out.push_back(&t);
  std::stable_sort(out.begin(), out.end(), [](const Trial* a, const Trial* b) { return a->number < b->number; });
  return out;
}

}  // namespace

void TpeSamplerOptions::validate() const {
  if (n_startup_trials < 0) throw ConfigError("tpe.n_startup_trials must be >= 0, got " + std::to_string(n_startup_trials));
  if (n_ei_candidates < 1) throw ConfigError("tpe.n_ei_candidates must be >= 1, got " + std::to_string(n_ei_candidates));
  if (!(prior_weight > 0) || !std::isfinite(prior_weight)) {
    throw ConfigError("tpe.prior_weight must be a positive number, got " + std::to_string(prior_weight));
  }
}

int default_tpe_gamma(int n) { return std::min(static_cast<int>(std::ceil(0.1 * n)), 25); }

TpeSampler::TpeSampler(TpeSamplerOptions options)
    : options_(options),
      rng_(options.seed ? *options.seed : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()),
      random_(RandomSamplerOptions{options.seed ? std::optional<uint64_t>(*options.seed ^ 0x9e3779b97f4a7c15ULL)
                                                : std::nullopt}) {
  options_.validate();
  estimator_options_.consider_prior = options_.consider_prior;
  estimator_options_.prior_weight = options_.prior_weight;
  estimator_options_.consider_magic_clip = options_.consider_magic_clip;
  estimator_options_.consider_endpoints = options_.consider_endpoints;
  estimator_options_.multivariate = options_.multivariate;
  estimator_options_.normalized_density = options_.normalized_density;
}

SearchSpace TpeSampler::joint_space(const SearchSpace& space, const std::vector<Trial>& history) {
  SearchSpace joint;
  bool any_finished = false;
  for (const auto& t : history) any_finished |= t.state == TrialState::kComplete || t.state == TrialState::kPruned;
  if (!any_finished) return joint;
  for (const auto& [name, d] : space) {
    if (d.single()) continue;
    bool shared = true;
    for (const auto& t : history) {
      if (t.state != TrialState::kComplete && t.state != TrialState::kPruned) continue;
      const auto dist = t.distributions.find(name);
      if (!t.params.count(name) || (dist != t.distributions.end() && dist->second != d)) {
        shared = false;
        break;
      }
    }
    if (shared) joint.emplace_back(name, d);
  }
  return joint;
}

TpeSampler::Split TpeSampler::split(const std::vector<Trial>& history, Direction direction) const {
  const double sign = direction == Direction::kMinimize ? 1.0 : -1.0;
  Split out;
  std::vector<Score> scores;
  for (const Trial* t : by_number(history)) {
    Score s{};
    if (t->state == TrialState::kComplete) {
      if (!t->value) continue;
      s = {-kInf, sign * *t->value};
    } else if (t->state == TrialState::kPruned) {
      if (!t->intermediate.empty()) {
        const auto& [step, v] = *t->intermediate.rbegin();
        s = {-static_cast<double>(step), std::isnan(v) ? kInf : sign * v};
      } else {
        s = {1.0, 0.0};
      }
    } else if (t->state == TrialState::kRunning && options_.constant_liar) {
      s = {kInf, sign * kInf};
    } else {
      continue;
    }
    scores.push_back(s);
    out.trials.push_back(t);
  }
  out.n_finished = static_cast<int>(std::count_if(scores.begin(), scores.end(), [](const Score& s) { return s.step < kInf; }));
  out.n_below = default_tpe_gamma(out.n_finished);
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return score_less(scores[a], scores[b]); });
  const auto n_below = std::min<std::size_t>(static_cast<std::size_t>(out.n_below), order.size());
  out.below.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_below));
  out.above.assign(order.begin() + static_cast<std::ptrdiff_t>(n_below), order.end());
  std::sort(out.below.begin(), out.below.end());
  std::sort(out.above.begin(), out.above.end());
  return out;
}

TpeFit TpeSampler::fit(const SearchSpace& group, const Split& split) const {
  TpeFit fit;
  fit.n_finished = split.n_finished;
  fit.n_below = split.n_below;
  // Observations: the trials holding the group's (first) parameter, oldest first.
  const auto observe = [&](const std::vector<std::size_t>& idx, std::vector<int64_t>& numbers_out) {
    std::vector<std::vector<double>> obs(group.size());
    for (std::size_t i : idx) {
      const Trial& t = *split.trials[i];
      numbers_out.push_back(t.number);
      if (group.empty() || std::isnan(usable_value(t, group[0].first, group[0].second))) continue;
      for (std::size_t p = 0; p < group.size(); ++p) obs[p].push_back(usable_value(t, group[p].first, group[p].second));
    }
    return obs;
  };
  const auto obs_below = observe(split.below, fit.below);
  const auto obs_above = observe(split.above, fit.above);
  if (!group.empty()) {
    fit.l.emplace(obs_below, group, estimator_options_);
    fit.g.emplace(obs_above, group, estimator_options_);
  }
  return fit;
}

TpeFit TpeSampler::fit(const SearchSpace& group, const std::vector<Trial>& history, Direction direction) const {
  return fit(group, split(history, direction));
}

std::map<std::string, double> TpeSampler::propose(const SearchSpace& group, const Split& split) {
  const TpeFit f = fit(group, split);
  const auto candidates = f.l->sample(rng_, static_cast<std::size_t>(options_.n_ei_candidates));
  const auto log_l = f.l->log_pdf(candidates);
  const auto log_g = f.g->log_pdf(candidates);
  // The first candidate with the largest log l(x) - log g(x) (NaN scores never win).
  std::size_t best = 0;
  double best_score = -kInf;
  for (std::size_t i = 0; i < log_l.size(); ++i) {
    const double score = log_l[i] - log_g[i];
    if (score > best_score) {
      best = i;
      best_score = score;
    }
  }
  std::map<std::string, double> out;
  for (std::size_t p = 0; p < group.size(); ++p) out[group[p].first] = candidates[p][best];
  return out;
}

std::map<std::string, double> TpeSampler::sample(const SearchSpace& space, const std::vector<Trial>& history,
                                                 Direction direction) {
  int n_finished = 0;
  for (const auto& t : history) {
    n_finished += (t.state == TrialState::kComplete && t.value.has_value()) || t.state == TrialState::kPruned;
  }
  const bool startup = n_finished < options_.n_startup_trials;
  std::map<std::string, double> out;
  std::optional<Split> observed;  // the same split serves every parameter
  if (!startup) observed = split(history, direction);
  if (options_.multivariate && !startup) {
    const SearchSpace joint = joint_space(space, history);
    if (!joint.empty()) out = propose(joint, *observed);
  }
  for (const auto& [name, d] : space) {
    if (out.count(name)) continue;
    if (d.single()) {
      out[name] = single_value(d);
    } else if (startup) {
      out[name] = random_.sample_one(d);
    } else {
      out.merge(propose(SearchSpace{{name, d}}, *observed));
    }
  }
  return out;
}

}  // namespace kiln::tune
