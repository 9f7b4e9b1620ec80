#include "kiln/tune/grid_sampler.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "kiln/core/error.h"
#include "tune_test_util.h"

namespace kiln::tune {
namespace {

SearchSpace space() {
  Distribution cat;
  cat.kind = Distribution::Kind::kCategorical;
  cat.choices = {"adam", "sgd"};
  return {{"opt", cat},
          {"layers", make_distribution(Distribution::Kind::kInt, 1, 3)},
          {"dropout", make_distribution(Distribution::Kind::kFloat, 0, 0.5, false, 0.25)},  // 0, .25, .5
          {"lr", make_distribution(Distribution::Kind::kFloat, 1e-4, 1e-1, true)}};
}

GridSamplerOptions options(uint64_t seed) {
  GridSamplerOptions o;
  o.values["lr"] = {1e-3, 1e-2};
  o.seed = seed;
  return o;
}

Trial trial(int64_t number, TrialState state, std::map<std::string, double> params) {
  Trial t;
  t.number = number;
  t.state = state;
  t.params = std::move(params);
  return t;
}

TEST(GridSampler, VisitsEveryPointOnceThenReportsExhaustion) {
  GridSampler g(space(), options(1));
  EXPECT_EQ(g.size(), 2 * 3 * 3 * 2);
  std::vector<Trial> history;
  std::set<std::map<std::string, double>> seen;
  for (int i = 0; i < g.size(); ++i) {
    EXPECT_FALSE(g.exhausted(history));
    const auto p = g.sample(space(), history, Direction::kMinimize);
    for (const auto& [name, d] : space()) EXPECT_TRUE(d.contains(p.at(name))) << name;
    EXPECT_TRUE(seen.insert(p).second) << "point proposed twice at trial " << i;
    // Running trials hold their point too: leave every third one running.
    history.push_back(trial(i, i % 3 == 0 ? TrialState::kRunning : TrialState::kComplete, p));
  }
  EXPECT_TRUE(g.exhausted(history));
  // Once every point is taken, a point whose trial is still running is proposed again.
  const auto again = g.sample(space(), history, Direction::kMinimize);
  const auto id = g.point_of(trial(0, TrialState::kRunning, again));
  ASSERT_TRUE(id.has_value());
  bool running = false;
  for (const auto& t : history) running |= g.point_of(t) == id && t.state == TrialState::kRunning;
  EXPECT_TRUE(running);
}

TEST(GridSampler, OrderIsShuffledBySeed) {
  auto order = [](uint64_t seed) {
    GridSampler g(space(), options(seed));
    std::vector<Trial> history;
    std::vector<int64_t> ids;
    for (int i = 0; i < g.size(); ++i) {
      history.push_back(trial(i, TrialState::kComplete, g.sample(space(), history, Direction::kMinimize)));
      ids.push_back(*g.point_of(history.back()));
    }
    return ids;
  };
  EXPECT_EQ(order(4), order(4));
  EXPECT_NE(order(4), order(5));
  auto sorted = order(4);
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(order(4), sorted);
}

TEST(GridSampler, PointsFollowOptunasProductOrder) {
  GridSampler g(space(), options(0));
  // Names sorted (dropout, layers, lr, opt); the last varies fastest.
  EXPECT_EQ(g.point(0), (std::map<std::string, double>{{"dropout", 0}, {"layers", 1}, {"lr", 1e-3}, {"opt", 0}}));
  EXPECT_EQ(g.point(1), (std::map<std::string, double>{{"dropout", 0}, {"layers", 1}, {"lr", 1e-3}, {"opt", 1}}));
  EXPECT_EQ(g.point(2), (std::map<std::string, double>{{"dropout", 0}, {"layers", 1}, {"lr", 1e-2}, {"opt", 0}}));
  EXPECT_EQ(g.point(35), (std::map<std::string, double>{{"dropout", 0.5}, {"layers", 3}, {"lr", 1e-2}, {"opt", 1}}));
}

std::string error_of(const SearchSpace& s, GridSamplerOptions o) {
  try {
    GridSampler g(s, std::move(o));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(GridSampler, ContinuousFloatNeedsAStepOrValues) {
  EXPECT_EQ(error_of(space(), GridSamplerOptions{}),
            "grid sampler: space.lr is a continuous float (0.0001..0.10000000000000001, log), which has no grid; give "
            "it a `step` or list its grid values (grid: [v1, v2, ...] in space.lr)");
}

TEST(GridSampler, RejectsBadValues) {
  GridSamplerOptions o = options(0);
  o.values["lr"] = {0.5};
  EXPECT_EQ(error_of(space(), o),
            "grid sampler: grid.lr holds 0.5, outside space.lr {\"high\":0.1,\"log\":true,\"low\":0.0001,\"type\":\"float\"}; "
            "use values inside the domain (choice indices for categoricals)");
  o = options(0);
  o.values["momentum"] = {0.9};
  EXPECT_EQ(error_of(space(), o),
            "grid sampler: grid.momentum names no parameter of the search space; remove it or add `momentum` to space");
  o = options(0);
  o.max_points = 10;
  EXPECT_EQ(error_of(space(), o),
            "grid sampler: the grid has more than max_points (10) points; coarsen steps or list fewer grid values");
  SearchSpace huge = {{"n", make_distribution(Distribution::Kind::kInt, 0, 1e9)}};
  EXPECT_EQ(error_of(huge, GridSamplerOptions{}),
            "grid sampler: space.n has 1000000001 grid points, more than max_points (1000000); give it a coarser step "
            "or list its grid values");
}

}  // namespace
}  // namespace kiln::tune
