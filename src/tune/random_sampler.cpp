#include "kiln/tune/random_sampler.h"

#include <algorithm>
#include <cmath>

#include "distribution_math.h"

namespace kiln::tune {

double sample_uniform(const Distribution& d, std::mt19937_64& rng) {
  if (d.single()) return single_value(d);
  const double u = std::generate_canonical<double, 53>(rng);  // [0, 1)
  const auto lerp = [u](double lo, double hi) { return lo + u * (hi - lo); };
  switch (d.kind) {
    case Distribution::Kind::kCategorical: {
      const auto k = static_cast<double>(d.choices.size());
      return std::min(std::floor(u * k), k - 1);
    }
    case Distribution::Kind::kFloat: {
      if (d.log) {
        return std::min(std::exp(lerp(std::log(d.low), std::log(d.high))), std::nextafter(d.high, d.low));
      }
      if (d.step) {
        const double high = grid_high(d);
        const double x = lerp(d.low - 0.5 * *d.step, high + 0.5 * *d.step);
        return std::min(std::max(round_half_even((x - d.low) / *d.step) * *d.step + d.low, d.low), high);
      }
      return std::min(lerp(d.low, d.high), std::nextafter(d.high, d.low));
    }
    case Distribution::Kind::kInt: {
      if (d.log) {
        const double x = std::exp(lerp(std::log(d.low - 0.5), std::log(d.high + 0.5)));
        return std::min(std::max(round_half_even(x), d.low), d.high);
      }
      const double st = step_of(d).value_or(1.0);
      const double high = grid_high(d);
      const double x = lerp(d.low - 0.5 * st, high + 0.5 * st);
      return std::min(std::max(round_half_even((x - d.low) / st) * st + d.low, d.low), high);
    }
  }
  return d.low;
}

RandomSampler::RandomSampler(RandomSamplerOptions options)
    : rng_(options.seed ? *options.seed : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()) {}

std::map<std::string, double> RandomSampler::sample(const SearchSpace& space, const std::vector<Trial>& /*history*/,
                                                    Direction /*direction*/) {
  std::map<std::string, double> out;
  for (const auto& [name, d] : space) out[name] = sample_one(d);
  return out;
}

double RandomSampler::sample_one(const Distribution& d) { return sample_uniform(d, rng_); }

}  // namespace kiln::tune
