#include "kiln/tune/hyperband_pruner.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "kiln/core/error.h"

namespace kiln::tune {

namespace {

std::optional<int64_t> last_step(const Trial& t) {
  if (t.intermediate.empty()) return std::nullopt;
  return t.intermediate.rbegin()->first;
}

// The largest last step among completed trials.
std::optional<int64_t> max_completed_step(const std::vector<Trial>& study) {
  std::optional<int64_t> best;
  for (const auto& t : study) {
    if (t.state != TrialState::kComplete) continue;
    const auto s = last_step(t);
    if (s && (!best || *s > *best)) best = s;
  }
  return best;
}

int64_t ipow(int64_t base, int64_t exp) {
  int64_t r = 1;
  for (int64_t i = 0; i < exp; ++i) r *= base;
  return r;
}

// The value trial `t` recorded at `rung` (see the header: the first reported step at or after the
// rung's step, for every rung it got through), if any.
std::optional<double> rung_value(const Trial& t, int rung, int64_t min_resource, int rf, int rate) {
  const auto last = last_step(t);
  if (!last) return std::nullopt;
  bool reached_at_last = false;
  for (int k = 0; k <= rung; ++k) {
    const int64_t promotion = min_resource * ipow(rf, rate + k);
    const auto it = t.intermediate.lower_bound(promotion);
    if (it == t.intermediate.end()) return std::nullopt;  // never reached rung k
    if (std::isnan(it->second)) return std::nullopt;      // pruned there without recording
    if (t.state == TrialState::kPruned && it->first == *last) {
      // Pruned at its last step: it recorded the first rung it reached there, then stopped.
      if (reached_at_last) return std::nullopt;
      reached_at_last = true;
    }
    if (k == rung) return it->second;
  }
  return std::nullopt;
}

// Optuna's _is_trial_promotable_to_next_rung.
bool promotable(double value, std::vector<double> competing, int rf, Direction direction) {
  int64_t idx = static_cast<int64_t>(competing.size()) / rf - 1;
  if (idx == -1) idx = 0;
  std::sort(competing.begin(), competing.end());
  if (direction == Direction::kMaximize) return value >= competing[competing.size() - 1 - static_cast<std::size_t>(idx)];
  return value <= competing[static_cast<std::size_t>(idx)];
}

bool successive_halving(const std::vector<const Trial*>& study, const Trial& trial, Direction direction,
                        int64_t min_resource, int rf, int rate, int bootstrap_count) {
  const auto step = last_step(trial);
  if (!step) return false;
  const double value = trial.intermediate.rbegin()->second;
  // Rungs the trial passed at earlier reports.
  int rung = 0;
  for (;; ++rung) {
    const auto it = trial.intermediate.lower_bound(min_resource * ipow(rf, rate + rung));
    if (it == trial.intermediate.end() || it->first >= *step) break;
  }
  for (;; ++rung) {
    if (*step < min_resource * ipow(rf, rate + rung)) return false;
    if (std::isnan(value)) return true;
    std::vector<double> competing;
    for (const Trial* t : study) {
      if (t->number == trial.number) continue;
      if (const auto v = rung_value(*t, rung, min_resource, rf, rate)) competing.push_back(*v);
    }
    competing.push_back(value);
    if (static_cast<int64_t>(competing.size()) <= bootstrap_count) return true;
    if (!promotable(value, std::move(competing), rf, direction)) return true;
  }
}

}  // namespace

uint32_t crc32(const std::string& bytes) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char ch : bytes) c = table[(c ^ ch) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void SuccessiveHalvingPrunerOptions::validate() const {
  if (min_resource && *min_resource < 1) {
    throw ConfigError("pruner.min_resource must be >= 1 or auto, got " + std::to_string(*min_resource));
  }
  if (reduction_factor < 2) throw ConfigError("pruner.reduction_factor must be >= 2, got " + std::to_string(reduction_factor));
  if (min_early_stopping_rate < 0) {
    throw ConfigError("pruner.min_early_stopping_rate must be >= 0, got " + std::to_string(min_early_stopping_rate));
  }
  if (bootstrap_count < 0) throw ConfigError("pruner.bootstrap_count must be >= 0, got " + std::to_string(bootstrap_count));
  if (bootstrap_count > 0 && !min_resource) {
    throw ConfigError("pruner.bootstrap_count is " + std::to_string(bootstrap_count) +
                      " but min_resource is auto; set min_resource to a step count or bootstrap_count to 0");
  }
}

SuccessiveHalvingPruner::SuccessiveHalvingPruner(SuccessiveHalvingPrunerOptions options) : options_(options) {
  options_.validate();
}

bool SuccessiveHalvingPruner::should_prune(const std::vector<Trial>& study, const Trial& trial,
                                           Direction direction) const {
  int64_t min_resource = 0;
  if (options_.min_resource) {
    min_resource = *options_.min_resource;
  } else {
    const auto s = max_completed_step(study);
    if (!s) return false;
    min_resource = std::max<int64_t>(*s / 100, 1);
  }
  std::vector<const Trial*> all;
  for (const auto& t : study) all.push_back(&t);
  return successive_halving(all, trial, direction, min_resource, options_.reduction_factor,
                            options_.min_early_stopping_rate, options_.bootstrap_count);
}

void HyperbandPrunerOptions::validate() const {
  if (min_resource < 1) throw ConfigError("pruner.min_resource must be >= 1, got " + std::to_string(min_resource));
  if (max_resource && *max_resource < min_resource) {
    throw ConfigError("pruner.max_resource must be >= min_resource (" + std::to_string(min_resource) + ") or auto, got " +
                      std::to_string(*max_resource));
  }
  if (reduction_factor < 2) throw ConfigError("pruner.reduction_factor must be >= 2, got " + std::to_string(reduction_factor));
  if (bootstrap_count < 0) throw ConfigError("pruner.bootstrap_count must be >= 0, got " + std::to_string(bootstrap_count));
  if (bootstrap_count > 0 && !max_resource) {
    throw ConfigError("pruner.bootstrap_count is " + std::to_string(bootstrap_count) +
                      " but max_resource is auto; set max_resource to a step count or bootstrap_count to 0");
  }
}

HyperbandPruner::HyperbandPruner(HyperbandPrunerOptions options) : options_(std::move(options)) { options_.validate(); }

std::optional<HyperbandPruner::Brackets> HyperbandPruner::brackets(const std::vector<Trial>& study) const {
  int64_t max_resource = 0;
  if (options_.max_resource) {
    max_resource = *options_.max_resource;
  } else {
    const auto s = max_completed_step(study);
    if (!s) return std::nullopt;
    max_resource = *s + 1;
  }
  // Python's math.log(max / min, rf), floored.
  const double ratio = static_cast<double>(max_resource) / static_cast<double>(options_.min_resource);
  const int n = static_cast<int>(std::floor(std::log(ratio) / std::log(static_cast<double>(options_.reduction_factor)))) + 1;
  if (n <= 0) return std::nullopt;
  Brackets b;
  b.n = n;
  for (int id = 0; id < n; ++id) {
    const int s = n - 1 - id;
    const double budget = std::ceil(static_cast<double>(n) * static_cast<double>(ipow(options_.reduction_factor, s)) /
                                    static_cast<double>(s + 1));
    b.budgets.push_back(static_cast<int64_t>(budget));
    b.total += b.budgets.back();
  }
  return b;
}

int HyperbandPruner::bracket_of(const Brackets& b, int64_t number) const {
  int64_t n = static_cast<int64_t>(crc32(options_.study_name + "_" + std::to_string(number)) % static_cast<uint64_t>(b.total));
  for (int id = 0; id < b.n; ++id) {
    n -= b.budgets[static_cast<std::size_t>(id)];
    if (n < 0) return id;
  }
  return b.n - 1;  // unreachable: the budgets sum to total
}

std::optional<int> HyperbandPruner::n_brackets(const std::vector<Trial>& study) const {
  const auto b = brackets(study);
  if (!b) return std::nullopt;
  return b->n;
}

int HyperbandPruner::bracket(const std::vector<Trial>& study, int64_t number) const {
  const auto b = brackets(study);
  return b ? bracket_of(*b, number) : 0;
}

std::vector<Trial> HyperbandPruner::bracket_trials(const std::vector<Trial>& study, const Trial& trial) const {
  const auto b = brackets(study);
  if (!b) return study;
  const int id = bracket_of(*b, trial.number);
  std::vector<Trial> out;
  for (const auto& t : study) {
    if (bracket_of(*b, t.number) == id) out.push_back(t);
  }
  return out;
}

bool HyperbandPruner::should_prune(const std::vector<Trial>& study, const Trial& trial, Direction direction) const {
  const auto b = brackets(study);
  if (!b) return false;
  const int id = bracket_of(*b, trial.number);
  std::vector<const Trial*> in_bracket;
  for (const auto& t : study) {
    if (bracket_of(*b, t.number) == id) in_bracket.push_back(&t);
  }
  return successive_halving(in_bracket, trial, direction, options_.min_resource, options_.reduction_factor, id,
                            options_.bootstrap_count);
}

}  // namespace kiln::tune
