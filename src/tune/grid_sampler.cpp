#include "kiln/tune/grid_sampler.h"

#include <algorithm>
#include <cmath>

#include "distribution_math.h"
#include "format.h"
#include "kiln/core/error.h"

namespace kiln::tune {

using format_detail::precise_number;

namespace {

bool same_value(double a, double b) { return std::fabs(a - b) <= 1e-12 * std::max(1.0, std::fabs(b)); }

// The grid of one parameter without explicit values.
std::vector<double> implied_values(const std::string& name, const Distribution& d, int64_t max_points) {
  std::vector<double> out;
  if (d.kind == Distribution::Kind::kCategorical) {
    for (std::size_t i = 0; i < d.choices.size(); ++i) out.push_back(static_cast<double>(i));
    return out;
  }
  const auto st = step_of(d);
  if (!st) {
    throw ConfigError("grid sampler: space." + name + " is a continuous float (" + precise_number(d.low) + ".." + precise_number(d.high) +
                      (d.log ? ", log" : "") + "), which has no grid; give it a `step` or list its grid values (grid: [v1, v2, ...] in space." +
                      name + ")");
  }
  const double high = grid_high(d);
  const double count = std::floor((high - d.low) / *st + 1e-9) + 1;
  if (count > static_cast<double>(max_points)) {
    throw ConfigError("grid sampler: space." + name + " has " + precise_number(count) + " grid points, more than max_points (" +
                      std::to_string(max_points) + "); give it a coarser step or list its grid values");
  }
  for (int64_t k = 0; k < static_cast<int64_t>(count); ++k) out.push_back(d.low + static_cast<double>(k) * *st);
  return out;
}

}  // namespace

GridSampler::GridSampler(const SearchSpace& space, GridSamplerOptions options)
    : rng_(options.seed ? *options.seed : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()) {
  if (options.max_points < 1) {
    throw ConfigError("grid sampler: max_points must be >= 1, got " + std::to_string(options.max_points));
  }
  for (const auto& [name, vals] : options.values) {
    const bool known = std::any_of(space.begin(), space.end(), [&](const auto& p) { return p.first == name; });
    if (!known) throw ConfigError("grid sampler: grid." + name + " names no parameter of the search space; remove it or add `" + name + "` to space");
    if (vals.empty()) throw ConfigError("grid sampler: grid." + name + " is empty; list at least one value");
  }
  std::vector<std::pair<std::string, Distribution>> sorted(space.begin(), space.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double total = 1;
  for (const auto& [name, d] : sorted) {
    std::vector<double> vals;
    const auto it = options.values.find(name);
    if (it != options.values.end()) {
      vals = it->second;
      for (double v : vals) {
        if (!d.contains(v)) {
          throw ConfigError("grid sampler: grid." + name + " holds " + precise_number(v) + ", outside space." + name + " " +
                            d.to_json().dump() + "; use values inside the domain (choice indices for categoricals)");
        }
      }
    } else {
      vals = implied_values(name, d, options.max_points);
    }
    total *= static_cast<double>(vals.size());
    if (total > static_cast<double>(options.max_points)) {
      throw ConfigError("grid sampler: the grid has more than max_points (" + std::to_string(options.max_points) +
                        ") points; coarsen steps or list fewer grid values");
    }
    names_.push_back(name);
    values_.push_back(std::move(vals));
  }
  size_ = static_cast<int64_t>(total);
}

std::map<std::string, double> GridSampler::point(int64_t id) const {
  std::map<std::string, double> out;
  // itertools.product order: the last (name-sorted) parameter varies fastest.
  for (std::size_t p = names_.size(); p-- > 0;) {
    const auto n = static_cast<int64_t>(values_[p].size());
    out[names_[p]] = values_[p][static_cast<std::size_t>(id % n)];
    id /= n;
  }
  return out;
}

std::optional<int64_t> GridSampler::point_of(const Trial& trial) const {
  int64_t id = 0;
  for (std::size_t p = 0; p < names_.size(); ++p) {
    const auto it = trial.params.find(names_[p]);
    if (it == trial.params.end()) return std::nullopt;
    const auto& vals = values_[p];
    const auto hit = std::find_if(vals.begin(), vals.end(), [&](double v) { return same_value(it->second, v); });
    if (hit == vals.end()) return std::nullopt;
    id = id * static_cast<int64_t>(vals.size()) + (hit - vals.begin());
  }
  return id;
}

void GridSampler::taken(const std::vector<Trial>& history, std::vector<char>& finished, std::vector<char>& running) const {
  finished.assign(static_cast<std::size_t>(size_), 0);
  running.assign(static_cast<std::size_t>(size_), 0);
  for (const auto& t : history) {
    const auto id = point_of(t);
    if (!id) continue;
    (t.state == TrialState::kRunning ? running : finished)[static_cast<std::size_t>(*id)] = 1;
  }
}

std::map<std::string, double> GridSampler::sample(const SearchSpace& space, const std::vector<Trial>& history,
                                                  Direction /*direction*/) {
  for (const auto& [name, d] : space) {
    if (!std::binary_search(names_.begin(), names_.end(), name)) {
      throw ConfigError("grid sampler: space." + name + " is not in the grid the sampler was built for; rebuild it with the current space");
    }
  }
  if (space.size() != names_.size()) {
    throw ConfigError("grid sampler: asked for " + std::to_string(space.size()) + " parameters but the grid has " +
                      std::to_string(names_.size()) + "; rebuild it with the current space");
  }
  std::vector<char> finished, running;
  taken(history, finished, running);
  std::vector<int64_t> targets;
  for (int64_t id = 0; id < size_; ++id) {
    if (!finished[static_cast<std::size_t>(id)] && !running[static_cast<std::size_t>(id)]) targets.push_back(id);
  }
  if (targets.empty()) {  // everything started: points not finished yet, then any point
    for (int64_t id = 0; id < size_; ++id) {
      if (!finished[static_cast<std::size_t>(id)]) targets.push_back(id);
    }
  }
  if (targets.empty()) {
    for (int64_t id = 0; id < size_; ++id) targets.push_back(id);
  }
  std::uniform_int_distribution<std::size_t> pick(0, targets.size() - 1);
  return point(targets[pick(rng_)]);
}

bool GridSampler::exhausted(const std::vector<Trial>& history) const {
  std::vector<char> finished, running;
  taken(history, finished, running);
  for (int64_t id = 0; id < size_; ++id) {
    if (!finished[static_cast<std::size_t>(id)] && !running[static_cast<std::size_t>(id)]) return false;
  }
  return true;
}

}  // namespace kiln::tune
