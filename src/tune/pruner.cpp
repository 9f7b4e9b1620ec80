#include "kiln/tune/pruner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kiln/core/error.h"

namespace kiln::tune {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Optuna's _is_first_in_interval_step: the previous reported step lies before the latest pruning
// checkpoint, so this step is the first report at or after it.
bool first_in_interval(int64_t step, const std::map<int64_t, double>& reported, int64_t warmup, int64_t interval) {
  const int64_t nearest_lower = (step - warmup) / interval * interval + warmup;
  int64_t second_last = -1;
  for (const auto& [s, v] : reported) {
    if (s > second_last && s != step) second_last = s;
  }
  return second_last < nearest_lower;
}

// np.nanmax / np.nanmin over the trial's values: NaN when every value is NaN.
double best_over_steps(const Trial& trial, Direction direction) {
  double best = kNaN;
  for (const auto& [s, v] : trial.intermediate) {
    if (std::isnan(v)) continue;
    if (std::isnan(best) || (direction == Direction::kMaximize ? v > best : v < best)) best = v;
  }
  return best;
}

}  // namespace

double nan_percentile(std::vector<double> values, double q) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }), values.end());
  if (values.empty()) return kNaN;
  std::sort(values.begin(), values.end());
  const double pos = (static_cast<double>(values.size()) - 1.0) * q / 100.0;
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, values.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  // numpy's _lerp: a + (b - a) * t, switching to b - (b - a) * (1 - t) for t >= 0.5.
  const double a = values[lo], b = values[hi], diff = b - a;
  return frac >= 0.5 ? b - diff * (1.0 - frac) : a + diff * frac;
}

PercentilePruner::PercentilePruner(PercentilePrunerOptions options) : options_(options) {
  auto fail = [](const std::string& what, const std::string& got) {
    throw ConfigError("pruner." + what + ", got " + got);
  };
  if (!(options_.percentile >= 0.0 && options_.percentile <= 100.0)) {
    fail("percentile must be between 0 and 100", std::to_string(options_.percentile));
  }
  if (options_.n_startup_trials < 0) fail("n_startup_trials must be >= 0", std::to_string(options_.n_startup_trials));
  if (options_.n_warmup_steps < 0) fail("n_warmup_steps must be >= 0", std::to_string(options_.n_warmup_steps));
  if (options_.interval_steps < 1) fail("interval_steps must be >= 1", std::to_string(options_.interval_steps));
  if (options_.n_min_trials < 1) fail("n_min_trials must be >= 1", std::to_string(options_.n_min_trials));
}

bool NopPruner::should_prune(const std::vector<Trial>& /*study*/, const Trial& /*trial*/,
                             Direction /*direction*/) const {
  return false;
}

bool PercentilePruner::should_prune(const std::vector<Trial>& study, const Trial& trial, Direction direction) const {
  int completed = 0;
  for (const auto& t : study) completed += t.state == TrialState::kComplete;
  if (completed == 0 || completed < options_.n_startup_trials) return false;
  if (trial.intermediate.empty()) return false;
  const int64_t step = trial.intermediate.rbegin()->first;  // Optuna's last_step: the largest step
  if (step < options_.n_warmup_steps) return false;
  if (!first_in_interval(step, trial.intermediate, options_.n_warmup_steps, options_.interval_steps)) return false;

  const double best = best_over_steps(trial, direction);
  if (std::isnan(best)) return true;

  std::vector<double> at_step;
  for (const auto& t : study) {
    if (t.state != TrialState::kComplete) continue;
    const auto it = t.intermediate.find(step);
    if (it != t.intermediate.end()) at_step.push_back(it->second);
  }
  if (static_cast<int>(at_step.size()) < options_.n_min_trials) return false;
  const double q = direction == Direction::kMaximize ? 100.0 - options_.percentile : options_.percentile;
  const double p = nan_percentile(std::move(at_step), q);
  if (std::isnan(p)) return false;
  return direction == Direction::kMaximize ? best < p : best > p;
}

}  // namespace kiln::tune
