#include "kiln/tune/random_sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "tune_test_util.h"

namespace kiln::tune {
namespace {

TEST(RandomSampler, StaysInTheDomainAndCoversIt) {
  Distribution cat;
  cat.kind = Distribution::Kind::kCategorical;
  cat.choices = {"a", "b", "c", "d"};
  const SearchSpace space = {{"f", make_distribution(Distribution::Kind::kFloat, -1, 1)},
                             {"sf", make_distribution(Distribution::Kind::kFloat, 0, 1, false, 0.3)},  // 0, .3, .6, .9
                             {"i", make_distribution(Distribution::Kind::kInt, 1, 4)},
                             {"si", make_distribution(Distribution::Kind::kInt, 0, 10, false, 3.0)},  // 0, 3, 6, 9
                             {"li", make_distribution(Distribution::Kind::kInt, 1, 4, true)},
                             {"c", cat}};
  RandomSampler s(RandomSamplerOptions{3});
  std::map<std::string, std::map<double, int>> seen;
  for (int i = 0; i < 4000; ++i) {
    const auto p = s.sample(space, {}, Direction::kMinimize);
    for (const auto& [name, d] : space) {
      ASSERT_TRUE(d.contains(p.at(name))) << name << " = " << p.at(name);
      if (name != "f") ++seen[name][p.at(name)];
    }
  }
  for (const auto& [name, counts] : seen) {
    EXPECT_EQ(counts.size(), 4u) << name;
    if (name == "li") continue;  // log scale: not uniform over the integers
    for (const auto& [v, n] : counts) EXPECT_NEAR(n, 1000, 150) << name << " = " << v;
  }
  // Log-uniform int over [0.5, 4.5] in log space: 1 is drawn with probability log(3)/log(9) = 0.5.
  EXPECT_NEAR(seen["li"][1.0], 2000, 150);
}

TEST(RandomSampler, LogFloatIsUniformInLogSpace) {
  const Distribution d = make_distribution(Distribution::Kind::kFloat, 1e-4, 1, true);
  RandomSampler s(RandomSamplerOptions{5});
  int below = 0;
  for (int i = 0; i < 4000; ++i) {
    const double v = s.sample_one(d);
    ASSERT_TRUE(d.contains(v));
    below += v < 1e-2;
  }
  EXPECT_NEAR(below, 2000, 150);
}

TEST(RandomSampler, SeedsReproduce) {
  const SearchSpace space = {{"f", make_distribution(Distribution::Kind::kFloat, 0, 1)},
                             {"i", make_distribution(Distribution::Kind::kInt, 0, 100)}};
  RandomSampler a(RandomSamplerOptions{9}), b(RandomSamplerOptions{9}), c(RandomSamplerOptions{10});
  int same_c = 0;
  for (int i = 0; i < 50; ++i) {
    const auto pa = a.sample(space, {}, Direction::kMinimize);
    EXPECT_EQ(pa, b.sample(space, {}, Direction::kMinimize));
    same_c += pa == c.sample(space, {}, Direction::kMinimize);
  }
  EXPECT_LT(same_c, 2);
}

TEST(RandomSampler, SingleValuedDomains) {
  RandomSampler s(RandomSamplerOptions{1});
  EXPECT_EQ(s.sample_one(make_distribution(Distribution::Kind::kFloat, 2.5, 2.5)), 2.5);
  EXPECT_EQ(s.sample_one(make_distribution(Distribution::Kind::kInt, 3, 4, false, 5.0)), 3.0);
}

}  // namespace
}  // namespace kiln::tune
