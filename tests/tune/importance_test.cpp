#include "kiln/tune/importance.h"

#include <gtest/gtest.h>

#include <random>

namespace kiln::tune {
namespace {

Trial trial(int64_t n, double a, double b, double value) {
  Trial t;
  t.number = n;
  t.state = TrialState::kComplete;
  t.params = {{"a", a}, {"b", b}};
  t.value = value;
  return t;
}

TEST(Importance, TheParameterDrivingTheObjectiveDominates) {
  Distribution a, b;
  b.kind = Distribution::Kind::kCategorical;
  b.choices = {"x", "y"};
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Trial> trials;
  for (int i = 0; i < 40; ++i) {
    const double x = u(rng);
    const double c = static_cast<double>(i % 2);
    trials.push_back(trial(i, x, c, 10 * x + 0.1 * c + 0.01 * u(rng)));
  }
  const auto imp = param_importances(trials, {{"a", a}, {"b", b}});
  ASSERT_EQ(imp.size(), 2u);
  EXPECT_EQ(imp[0].name, "a");
  EXPECT_GT(imp[0].importance, 0.95);
  EXPECT_NEAR(imp[0].importance + imp[1].importance, 1.0, 1e-12);
}

TEST(Importance, ExactValuesOnASmallStudy) {
  // b takes two values: groups {1, 3} and {5, 7}: mean 4, SST = 20, SSB = 2*(2-4)^2 + 2*(6-4)^2 = 16.
  // a has four distinct values (one bin each): SSB = SST, eta = 1. Normalized: 1/1.8 and 0.8/1.8.
  Distribution d;
  const std::vector<Trial> trials = {trial(0, 0.1, 0, 1), trial(1, 0.2, 0, 3), trial(2, 0.3, 1, 5), trial(3, 0.4, 1, 7)};
  const auto imp = param_importances(trials, {{"a", d}, {"b", d}});
  ASSERT_EQ(imp.size(), 2u);
  EXPECT_EQ(imp[0].name, "a");
  EXPECT_NEAR(imp[0].importance, 1 / 1.8, 1e-12);
  EXPECT_NEAR(imp[1].importance, 0.8 / 1.8, 1e-12);
}

TEST(Importance, TooFewTrialsOrNoVariance) {
  Distribution d;
  EXPECT_TRUE(param_importances({trial(0, 0.1, 0, 1), trial(1, 0.2, 1, 2)}, {{"a", d}}).empty());
  const auto flat = param_importances({trial(0, 0.1, 0, 1), trial(1, 0.2, 1, 1), trial(2, 0.3, 0, 1)}, {{"a", d}, {"b", d}});
  ASSERT_EQ(flat.size(), 2u);
  EXPECT_EQ(flat[0].importance, 0);
}

}  // namespace
}  // namespace kiln::tune
