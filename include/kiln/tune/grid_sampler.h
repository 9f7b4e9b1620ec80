// Grid search: every combination of the parameters' grid values, each proposed once, in a seeded
// random order (Optuna 3.1's GridSampler). A point counts as taken once a trial holds it, running
// trials included, so parallel workers do not duplicate; when every point is taken the grid is
// exhausted and the tuning loop stops.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kiln/tune/sampler.h"

namespace kiln::tune {

struct GridSamplerOptions {
  /// Explicit grid values per parameter name, in internal representation (choice indices for
  /// categoricals), each inside the parameter's domain. Required for floats without a step;
  /// optional for the others, whose grid is otherwise every choice / every point of the step grid.
  std::map<std::string, std::vector<double>> values;
  /// The most grid points allowed (>= 1); a larger grid is a ConfigError (give a coarser step or
  /// explicit values). Default 1,000,000.
  int64_t max_points = 1'000'000;
  /// Seed of the order in which points are proposed. None: seeded from std::random_device.
  std::optional<uint64_t> seed;
};

/// Not thread-safe (one per worker thread, or a lock around it).
class GridSampler : public Sampler {
 public:
  /// Throws ConfigError naming the parameter for a float without a step or explicit values, a value
  /// outside its domain, a name not in `space`, or a grid larger than max_points.
  GridSampler(const SearchSpace& space, GridSamplerOptions options);

  /// A grid point no trial holds yet (chosen at random among them); once all are taken, one not yet
  /// finished; once all are finished, any point. Throws ConfigError unless `space` has exactly the
  /// grid's parameters.
  [[nodiscard]] std::map<std::string, double> sample(const SearchSpace& space, const std::vector<Trial>& history,
                                                     Direction direction) override;

  /// Whether every grid point is held by a trial (running or finished): nothing new to propose.
  [[nodiscard]] bool exhausted(const std::vector<Trial>& history) const;

  /// The number of grid points.
  [[nodiscard]] int64_t size() const { return size_; }
  /// Grid point `id` (0 <= id < size()) as internal values by parameter name.
  [[nodiscard]] std::map<std::string, double> point(int64_t id) const;
  /// The grid point a trial holds, if its parameters are one.
  [[nodiscard]] std::optional<int64_t> point_of(const Trial& trial) const;

 private:
  /// Grid points held by trials: finished ones and running ones.
  void taken(const std::vector<Trial>& history, std::vector<char>& finished, std::vector<char>& running) const;

  std::vector<std::string> names_;                 // sorted, as Optuna orders them
  std::vector<std::vector<double>> values_;        // per name, in the order the grid lists them
  int64_t size_ = 1;
  std::mt19937_64 rng_;
};

}  // namespace kiln::tune
