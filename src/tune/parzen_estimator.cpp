#include "kiln/tune/parzen_estimator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "distribution_math.h"
#include "kiln/core/error.h"
#include "truncnorm.h"

namespace kiln::tune {

namespace {

constexpr double kEps = 1e-12;
constexpr double kSigma0Magnitude = 0.2;
constexpr double kLogSqrt2Pi = 0.91893853320467274178;
constexpr double kInf = std::numeric_limits<double>::infinity();

double uniform01(std::mt19937_64& rng) { return std::generate_canonical<double, 53>(rng); }

}  // namespace

std::vector<double> default_tpe_weights(std::size_t n) {
  if (n < 25) return std::vector<double>(n, 1.0);
  // np.linspace(1 / n, 1, num=n - 25) followed by 25 ones.
  const std::size_t num = n - 25;
  std::vector<double> w(n, 1.0);
  const double start = 1.0 / static_cast<double>(n), stop = 1.0;
  if (num == 1) {
    w[0] = start;
  } else if (num > 1) {
    const double step = (stop - start) / static_cast<double>(num - 1);
    for (std::size_t i = 0; i < num; ++i) w[i] = static_cast<double>(i) * step + start;
    w[num - 1] = stop;
  }
  return w;
}

ParzenEstimator::ParzenEstimator(const std::vector<std::vector<double>>& observations, const SearchSpace& space,
                                 const ParzenEstimatorOptions& options)
    : options_(options) {
  if (observations.size() != space.size()) {
    throw ConfigError("parzen estimator: " + std::to_string(observations.size()) + " observation columns for " +
                      std::to_string(space.size()) + " parameters; pass one column per parameter");
  }
  if (space.empty()) throw ConfigError("parzen estimator: the search space is empty; give at least one parameter");
  if (!(options.prior_weight > 0) || !std::isfinite(options.prior_weight)) {
    throw ConfigError("tpe.prior_weight must be a positive number, got " + std::to_string(options.prior_weight));
  }
  n_observations_ = observations.front().size();
  for (std::size_t p = 0; p < observations.size(); ++p) {
    if (observations[p].size() != n_observations_) {
      throw ConfigError("parzen estimator: parameter `" + space[p].first + "` has " +
                        std::to_string(observations[p].size()) + " observations, expected " +
                        std::to_string(n_observations_));
    }
  }
  const std::size_t n = n_observations_;
  const bool consider_prior = options.consider_prior || n == 0;

  // Component weights: Optuna's default_weights over the observations, then the prior.
  weights_ = default_tpe_weights(n);
  if (consider_prior) weights_.push_back(options.prior_weight);
  const double total = std::accumulate(weights_.begin(), weights_.end(), 0.0);
  for (auto& w : weights_) w /= total;
  log_weights_.resize(weights_.size());
  std::transform(weights_.begin(), weights_.end(), log_weights_.begin(), [](double w) { return std::log(w); });

  // Scott's rule for the joint bandwidth (multivariate only).
  const double sigma0 = kSigma0Magnitude * std::pow(static_cast<double>(std::max<std::size_t>(n, 1)),
                                                    -1.0 / (static_cast<double>(space.size()) + 4.0));

  params_.reserve(space.size());
  for (std::size_t p = 0; p < space.size(); ++p) {
    const Distribution& d = space[p].second;
    Param par;
    par.dist = d;
    const std::vector<double>& obs = observations[p];
    if (d.kind == Distribution::Kind::kCategorical) {
      par.is_categorical = true;
      const std::size_t k = d.choices.size();
      const std::size_t rows = consider_prior ? n + 1 : n;
      const double fill = consider_prior ? options.prior_weight / static_cast<double>(n + 1)
                                         : options.prior_weight / static_cast<double>(n);
      par.categorical.assign(rows, std::vector<double>(k, fill));
      for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<std::size_t>(obs[i]);
        if (c < k) par.categorical[i][c] += 1.0;
      }
      for (auto& row : par.categorical) {
        const double s = std::accumulate(row.begin(), row.end(), 0.0);
        for (auto& x : row) x /= s;
      }
      params_.push_back(std::move(par));
      continue;
    }
    // Truncation bounds in the estimator's space.
    const auto st = step_of(d);
    if (d.log) {
      if (d.kind == Distribution::Kind::kInt) {
        par.low = std::log(d.low - 0.5);
        par.high = std::log(d.high + 0.5);
      } else {
        par.low = std::log(d.low);
        par.high = std::log(d.high);
      }
    } else if (st) {
      par.q = *st;
      par.low = d.low - 0.5 * *st;
      par.high = grid_high(d) + 0.5 * *st;
    } else {
      par.low = d.low;
      par.high = d.high;
    }
    const double low = par.low, high = par.high;
    par.mus.resize(consider_prior ? n + 1 : n);
    for (std::size_t i = 0; i < n; ++i) par.mus[i] = to_model(par, obs[i]);
    if (consider_prior) par.mus[n] = 0.5 * (low + high);
    const std::size_t m = par.mus.size();
    par.sigmas.assign(m, 0.0);
    if (options.multivariate) {
      std::fill(par.sigmas.begin(), par.sigmas.end(), sigma0 * (high - low));
    } else {
      // Each component's bandwidth: the larger gap to its sorted neighbours (domain ends included).
      std::vector<std::size_t> order(m);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return par.mus[a] < par.mus[b]; });
      std::vector<double> ext(m + 2);
      ext[0] = low;
      for (std::size_t i = 0; i < m; ++i) ext[i + 1] = par.mus[order[i]];
      ext[m + 1] = high;
      std::vector<double> sorted_sigmas(m);
      for (std::size_t i = 0; i < m; ++i) sorted_sigmas[i] = std::max(ext[i + 1] - ext[i], ext[i + 2] - ext[i + 1]);
      if (!options.consider_endpoints && ext.size() >= 4) {
        sorted_sigmas[0] = ext[2] - ext[1];
        sorted_sigmas[m - 1] = ext[m] - ext[m - 1];
      }
      for (std::size_t i = 0; i < m; ++i) par.sigmas[order[i]] = sorted_sigmas[i];
    }
    const double max_sigma = high - low;
    const double min_sigma =
        options.consider_magic_clip ? (high - low) / std::min(100.0, 1.0 + static_cast<double>(m)) : kEps;
    for (auto& s : par.sigmas) s = std::min(std::max(s, min_sigma), max_sigma);
    if (consider_prior) par.sigmas[n] = high - low;
    par.log_mass.resize(m);
    for (std::size_t j = 0; j < m; ++j) {
      par.log_mass[j] = truncnorm::log_gauss_mass((low - par.mus[j]) / par.sigmas[j], (high - par.mus[j]) / par.sigmas[j]);
    }
    params_.push_back(std::move(par));
  }
}

double ParzenEstimator::to_model(const Param& p, double internal) const {
  return !p.is_categorical && p.dist.log ? std::log(internal) : internal;
}

double ParzenEstimator::from_model(const Param& p, double x) const {
  const Distribution& d = p.dist;
  if (p.is_categorical) return x;
  if (d.kind == Distribution::Kind::kFloat) {
    if (d.log) return std::exp(x);
    if (!p.q) return x;
    const double v = round_half_even((x - d.low) / *p.q) * *p.q + d.low;
    return std::min(std::max(v, d.low), grid_high(d));
  }
  if (d.log) return std::min(std::max(round_half_even(std::exp(x)), d.low), d.high);
  const double v = round_half_even((x - d.low) / *p.q) * *p.q + d.low;
  return std::min(std::max(v, d.low), grid_high(d));
}

std::vector<std::vector<double>> ParzenEstimator::sample(std::mt19937_64& rng, std::size_t size) const {
  // Pick a component per draw (weights), then draw each parameter from that component.
  std::vector<double> cumulative(weights_.size());
  std::partial_sum(weights_.begin(), weights_.end(), cumulative.begin());
  std::vector<std::size_t> active(size);
  for (auto& a : active) {
    const double u = uniform01(rng) * cumulative.back();
    a = static_cast<std::size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin());
    a = std::min(a, weights_.size() - 1);
  }
  std::vector<std::vector<double>> out(params_.size(), std::vector<double>(size));
  for (std::size_t p = 0; p < params_.size(); ++p) {
    const Param& par = params_[p];
    for (std::size_t i = 0; i < size; ++i) {
      const std::size_t j = active[i];
      if (par.is_categorical) {
        const auto& probs = par.categorical[j];
        const double u = uniform01(rng);
        double c = 0;
        std::size_t k = 0;
        for (; k + 1 < probs.size(); ++k) {
          c += probs[k];
          if (!(c < u)) break;
        }
        out[p][i] = static_cast<double>(k);
      } else {
        const double mu = par.mus[j], sigma = par.sigmas[j];
        const double z = truncnorm::ppf(uniform01(rng), (par.low - mu) / sigma, (par.high - mu) / sigma);
        out[p][i] = from_model(par, z * sigma + mu);
      }
    }
  }
  return out;
}

std::vector<double> ParzenEstimator::log_pdf(const std::vector<std::vector<double>>& points) const {
  if (points.size() != params_.size()) {
    throw ConfigError("parzen estimator: log_pdf got " + std::to_string(points.size()) + " columns for " +
                      std::to_string(params_.size()) + " parameters");
  }
  const std::size_t n_points = points.front().size();
  const std::size_t m = weights_.size();
  std::vector<double> out(n_points);
  std::vector<double> component(m);
  for (std::size_t i = 0; i < n_points; ++i) {
    std::copy(log_weights_.begin(), log_weights_.end(), component.begin());
    for (std::size_t p = 0; p < params_.size(); ++p) {
      const Param& par = params_[p];
      const double v = points[p].at(i);
      if (par.is_categorical) {
        const auto c = static_cast<std::size_t>(v);
        for (std::size_t j = 0; j < m; ++j) component[j] += std::log(par.categorical[j].at(c));
        continue;
      }
      const double x = to_model(par, v);
      if (par.q) {
        const double upper = std::min(x + *par.q / 2.0, par.high);
        const double lower = std::max(x - *par.q / 2.0, par.low);
        for (std::size_t j = 0; j < m; ++j) {
          const double mu = par.mus[j], s = par.sigmas[j];
          component[j] += truncnorm::log_gauss_mass((lower - mu) / s, (upper - mu) / s) - par.log_mass[j];
        }
      } else {
        const bool outside = x < par.low || x > par.high;
        for (std::size_t j = 0; j < m; ++j) {
          if (outside) {
            component[j] = -kInf;
            continue;
          }
          const double z = (x - par.mus[j]) / par.sigmas[j];
          double lp = -(z * z) / 2.0 - kLogSqrt2Pi - par.log_mass[j];
          if (options_.normalized_density) lp -= std::log(par.sigmas[j]);
          component[j] += lp;
        }
      }
    }
    const double mx = *std::max_element(component.begin(), component.end());
    if (!std::isfinite(mx)) {
      out[i] = mx;
      continue;
    }
    double s = 0;
    for (std::size_t j = 0; j < m; ++j) s += std::exp(component[j] - mx);
    out[i] = std::log(s) + mx;
  }
  return out;
}

}  // namespace kiln::tune
