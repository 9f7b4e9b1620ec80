#include "kiln/tune/pruner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"

namespace kiln::tune {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::map<int64_t, double> values_of(const nlohmann::json& j) {
  std::map<int64_t, double> out;
  for (const auto& [k, v] : j.items()) out[std::stoll(k)] = v.is_null() ? kNaN : v.get<double>();
  return out;
}

TrialState state_of(const std::string& s) {
  if (s == "complete") return TrialState::kComplete;
  if (s == "pruned") return TrialState::kPruned;
  if (s == "fail") return TrialState::kFailed;
  return TrialState::kRunning;
}

// Optuna 3.1's decisions on 400 seeded histories (tests/golden/make_pruner_golden.py).
TEST(PercentilePruner, DecidesAsOptuna) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/tune/pruner.json");
  ASSERT_TRUE(in) << "missing golden; run /usr/bin/python3 tests/golden/make_pruner_golden.py";
  const auto golden = nlohmann::json::parse(in);
  int pruned = 0;
  for (std::size_t i = 0; i < golden.at("cases").size(); ++i) {
    const auto& c = golden["cases"][i];
    PercentilePrunerOptions o;
    o.percentile = c["options"]["percentile"].get<double>();
    o.n_startup_trials = c["options"]["n_startup_trials"].get<int>();
    o.n_warmup_steps = c["options"]["n_warmup_steps"].get<int64_t>();
    o.interval_steps = c["options"]["interval_steps"].get<int64_t>();
    o.n_min_trials = c["options"]["n_min_trials"].get<int>();
    std::vector<Trial> study;
    for (const auto& t : c["trials"]) {
      Trial trial;
      trial.number = static_cast<int64_t>(study.size());
      trial.state = state_of(t["state"].get<std::string>());
      trial.intermediate = values_of(t["intermediate"]);
      study.push_back(trial);
    }
    Trial judged;
    judged.number = static_cast<int64_t>(study.size());
    judged.intermediate = values_of(c["judged"]);
    const Direction d = c["direction"] == "maximize" ? Direction::kMaximize : Direction::kMinimize;
    const bool got = PercentilePruner(o).should_prune(study, judged, d);
    EXPECT_EQ(got, c["prune"].get<bool>()) << "case " << i << ": " << c.dump();
    pruned += got;
  }
  EXPECT_EQ(pruned, golden["pruned_cases"].get<int>());
  EXPECT_GT(pruned, 0);
}

TEST(PercentilePruner, DefaultsAreOptunasMedianPruner) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/tune/pruner.json");
  const auto m = nlohmann::json::parse(in).at("median_pruner_defaults");
  const PercentilePrunerOptions o;
  EXPECT_EQ(o.percentile, m["percentile"].get<double>());
  EXPECT_EQ(o.n_startup_trials, m["n_startup_trials"].get<int>());
  EXPECT_EQ(o.n_warmup_steps, m["n_warmup_steps"].get<int64_t>());
  EXPECT_EQ(o.interval_steps, m["interval_steps"].get<int64_t>());
  EXPECT_EQ(o.n_min_trials, m["n_min_trials"].get<int>());
}

TEST(PercentilePruner, NanPercentileMatchesNumpy) {
  // numpy.nanpercentile([3, nan, 1, 2, 10], q) for q = 0, 25, 50, 90, 100.
  const std::vector<double> v = {3, kNaN, 1, 2, 10};
  EXPECT_EQ(nan_percentile(v, 0), 1.0);
  EXPECT_EQ(nan_percentile(v, 25), 1.75);
  EXPECT_EQ(nan_percentile(v, 50), 2.5);
  EXPECT_NEAR(nan_percentile(v, 90), 7.9, 1e-12);
  EXPECT_EQ(nan_percentile(v, 100), 10.0);
  EXPECT_TRUE(std::isnan(nan_percentile({kNaN, kNaN}, 50)));
}

TEST(PercentilePruner, RejectsBadOptions) {
  auto message = [](PercentilePrunerOptions o) {
    try {
      PercentilePruner p(o);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  PercentilePrunerOptions o;
  o.percentile = 101;
  EXPECT_EQ(message(o), "pruner.percentile must be between 0 and 100, got 101.000000");
  o = {};
  o.interval_steps = 0;
  EXPECT_EQ(message(o), "pruner.interval_steps must be >= 1, got 0");
  o = {};
  o.n_min_trials = 0;
  EXPECT_EQ(message(o), "pruner.n_min_trials must be >= 1, got 0");
}

TEST(NopPruner, NeverPrunes) {
  Trial judged;
  judged.intermediate = {{0, kNaN}, {5, 1e9}};
  Trial done;
  done.state = TrialState::kComplete;
  done.intermediate = {{0, 0.0}, {5, 0.0}};
  const NopPruner nop;
  const Pruner& pruner = nop;
  EXPECT_FALSE(pruner.should_prune({done, done, done}, judged, Direction::kMinimize));
  EXPECT_FALSE(pruner.should_prune({done, done, done}, judged, Direction::kMaximize));
}

}  // namespace
}  // namespace kiln::tune
