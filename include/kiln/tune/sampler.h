// Samplers propose parameters for a new trial from the study's history. They only ask and tell:
// the tuning loop owns time, storage and parallelism.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/tune/study.h"

namespace kiln::tune {

class Sampler {
 public:
  virtual ~Sampler() = default;
  /// Internal values for every parameter of `space`, for a new trial, given every trial of the
  /// study so far (all states; running trials included, for constant-liar samplers).
  /// Not thread-safe: one sampler per worker thread, or a lock around it.
  [[nodiscard]] virtual std::map<std::string, double> sample(const SearchSpace& space,
                                                             const std::vector<Trial>& history,
                                                             Direction direction) = 0;
};

}  // namespace kiln::tune
