#include "kiln/tune/parzen_estimator.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kiln/core/error.h"
#include "truncnorm.h"
#include "tune_test_util.h"

namespace kiln::tune {
namespace {

// The inverse CDF inverts the truncated normal's CDF, in the tails too.
TEST(TruncNorm, PpfInvertsTheCdf) {
  const double bounds[][2] = {{-1, 1}, {-30, -25}, {25, 40}, {-3, 0.5}, {0.2, 0.3}, {-1e3, 1e3}, {-8, -7.9}};
  for (const auto& ab : bounds) {
    const double a = ab[0], b = ab[1];
    const double mass = truncnorm::log_gauss_mass(a, b);
    double prev = -INFINITY;
    for (double q : {1e-12, 1e-6, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-9}) {
      const double x = truncnorm::ppf(q, a, b);
      ASSERT_GE(x, a);
      ASSERT_LE(x, b);
      EXPECT_GE(x, prev) << a << ".." << b << " q " << q;
      prev = x;
      const double cdf = std::exp(truncnorm::log_gauss_mass(a, x) - mass);
      EXPECT_NEAR(cdf, q, 1e-9 * std::max(1.0, q * 1e3)) << a << ".." << b << " q " << q;
    }
  }
}

TEST(TruncNorm, LogNdtrMatchesErfcAndTheTail) {
  for (double a : {-5.0, -1.0, 0.0, 0.5, 3.0}) EXPECT_NEAR(truncnorm::log_ndtr(a), std::log(0.5 * std::erfc(-a / std::sqrt(2.0))), 1e-13);
  // log Phi(-40) = -804.608442013754...
  EXPECT_NEAR(truncnorm::log_ndtr(-40), -804.60844201375, 1e-9);
  for (double y : {-800.0, -30.0, -2.0, -0.1, -1e-10}) EXPECT_NEAR(truncnorm::log_ndtr(truncnorm::ndtri_exp(y)), y, 1e-9 * std::fabs(y) + 1e-15);
}

TEST(ParzenEstimator, SamplesLieInTheDomainAndFollowTheMixture) {
  Distribution cat;
  cat.kind = Distribution::Kind::kCategorical;
  cat.choices = {"a", "b", "c"};
  const SearchSpace space = {{"f", make_distribution(Distribution::Kind::kFloat, 0, 10)},
                             {"li", make_distribution(Distribution::Kind::kInt, 1, 1000, true)},
                             {"sf", make_distribution(Distribution::Kind::kFloat, 0, 1, false, 0.1)},
                             {"c", cat}};
  const std::vector<std::vector<double>> obs = {{1, 1.2, 0.8, 1.1}, {10, 12, 9, 11}, {0.1, 0.2, 0.1, 0.1}, {2, 2, 2, 1}};
  for (bool multivariate : {false, true}) {
    ParzenEstimatorOptions o;
    o.multivariate = multivariate;
    const ParzenEstimator pe(obs, space, o);
    EXPECT_EQ(pe.weights().size(), 5u);
    std::mt19937_64 rng(3);
    const auto s = pe.sample(rng, 4000);
    int near_one = 0, choice_two = 0;
    for (std::size_t i = 0; i < 4000; ++i) {
      for (std::size_t p = 0; p < space.size(); ++p) ASSERT_TRUE(space[p].second.contains(s[p][i])) << space[p].first << " " << s[p][i];
      near_one += std::fabs(s[0][i] - 1.0) < 2.0;
      choice_two += s[3][i] == 2.0;
    }
    EXPECT_GT(near_one, 2200);  // 4 of 5 components sit at ~1 (uniform: 1200)
    EXPECT_GT(choice_two, 1800);  // 3 of 4 observations chose 2
    // Discrete log-probabilities of the whole step grid sum to 1.
    double total = 0;
    std::vector<std::vector<double>> grid(4);
    for (int k = 0; k <= 10; ++k) {
      grid[0].push_back(5);
      grid[1].push_back(10);
      grid[2].push_back(0.1 * k);
      grid[3].push_back(0);
    }
    const ParzenEstimator only_step({obs[2]}, {space[2]}, o);
    for (double lp : only_step.log_pdf({grid[2]})) total += std::exp(lp);
    EXPECT_NEAR(total, 1.0, 1e-9);
  }
}

TEST(ParzenEstimator, NormalizedDensityIntegratesToOne) {
  const SearchSpace space = {{"f", make_distribution(Distribution::Kind::kFloat, -2, 3)}};
  ParzenEstimatorOptions o;
  o.normalized_density = true;
  const ParzenEstimator pe({{0.1, 0.4, 2.5, -1.9}}, space, o);
  std::vector<double> xs;
  const int n = 20000;
  for (int i = 0; i < n; ++i) xs.push_back(-2 + 5 * (i + 0.5) / n);
  double integral = 0;
  for (double lp : pe.log_pdf({xs})) integral += std::exp(lp) * 5.0 / n;
  EXPECT_NEAR(integral, 1.0, 1e-6);
}

TEST(ParzenEstimator, RejectsMismatchedColumns) {
  const SearchSpace space = {{"f", make_distribution(Distribution::Kind::kFloat, 0, 1)},
                             {"g", make_distribution(Distribution::Kind::kFloat, 0, 1)}};
  try {
    ParzenEstimator pe({{0.1, 0.2}, {0.3}}, space, {});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "parzen estimator: parameter `g` has 1 observations, expected 2");
  }
}

}  // namespace
}  // namespace kiln::tune
