// Independent uniform sampling: Optuna 3.1's RandomSampler distributions (uniform floats, uniform
// in log space for log parameters, uniform over the step grid for stepped floats and ints,
// uniform choices), drawn from a seeded std::mt19937_64.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kiln/tune/sampler.h"

namespace kiln::tune {

struct RandomSamplerOptions {
  /// Seed of the generator; the same seed and calls give the same parameters. None: seeded from
  /// std::random_device.
  std::optional<uint64_t> seed;
};

/// Not thread-safe (one per worker thread).
class RandomSampler : public Sampler {
 public:
  explicit RandomSampler(RandomSamplerOptions options = {});

  /// Uniform internal values for every parameter of `space`; the history is not used.
  [[nodiscard]] std::map<std::string, double> sample(const SearchSpace& space, const std::vector<Trial>& history,
                                                     Direction direction) override;

  /// One uniform internal value of `d` (contained in `d`).
  [[nodiscard]] double sample_one(const Distribution& d);

 private:
  std::mt19937_64 rng_;
};

/// One uniform internal value of `d` drawn from `rng` (Optuna's RandomSampler transform).
[[nodiscard]] double sample_uniform(const Distribution& d, std::mt19937_64& rng);

}  // namespace kiln::tune
