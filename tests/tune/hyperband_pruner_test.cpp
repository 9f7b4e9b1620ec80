#include "kiln/tune/hyperband_pruner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"
#include "tune_test_util.h"

namespace kiln::tune {
namespace {

const nlohmann::json& golden() {
  static const nlohmann::json j = load_golden("hyperband");
  return j;
}

std::unique_ptr<Pruner> pruner_of(const nlohmann::json& c) {
  const auto& o = c["options"];
  if (c["kind"] == "hyperband") {
    HyperbandPrunerOptions h;
    h.min_resource = o["min_resource"].get<int64_t>();
    h.max_resource = o["max_resource"].get<int64_t>();
    h.reduction_factor = o["reduction_factor"].get<int>();
    h.bootstrap_count = o["bootstrap_count"].get<int>();
    h.study_name = c["study_name"].get<std::string>();
    return std::make_unique<HyperbandPruner>(h);
  }
  SuccessiveHalvingPrunerOptions s;
  s.min_resource = o["min_resource"].get<int64_t>();
  s.reduction_factor = o["reduction_factor"].get<int>();
  s.min_early_stopping_rate = o["min_early_stopping_rate"].get<int>();
  s.bootstrap_count = o["bootstrap_count"].get<int>();
  return std::make_unique<SuccessiveHalvingPruner>(s);
}

// Replays Optuna 3.1's simulated studies (tests/golden/make_hyperband_golden.py): every decision
// after every report must be Optuna's.
TEST(HyperbandPruner, DecidesAsOptunaInSimulatedStudies) {
  int decisions = 0, pruned = 0, mismatches = 0;
  for (std::size_t ci = 0; ci < golden()["cases"].size(); ++ci) {
    const auto& c = golden()["cases"][ci];
    const auto pruner = pruner_of(c);
    const Direction dir = c["direction"] == "maximize" ? Direction::kMaximize : Direction::kMinimize;
    std::vector<Trial> study;
    for (const auto& e : c["events"]) {
      const auto op = e[0].get<std::string>();
      const auto number = e[1].get<int64_t>();
      if (op == "ask") {
        Trial t;
        t.number = number;
        t.id = number;
        study.push_back(t);
        continue;
      }
      Trial& t = study.at(static_cast<std::size_t>(number));
      if (op == "report") {
        t.intermediate[e[2].get<int64_t>()] = e[3].is_null() ? kNaN : e[3].get<double>();
        const bool got = pruner->should_prune(study, t, dir);
        const bool want = e[4].get<bool>();
        if (got != want && ++mismatches <= 5) {
          ADD_FAILURE() << "case " << ci << " (" << c["kind"] << " " << c["options"].dump() << ", " << c["direction"]
                        << "): trial " << number << " step " << e[2] << ": got " << got << ", Optuna " << want;
        }
        ++decisions;
        pruned += got;
      } else if (e[2] == "pruned") {
        t.state = TrialState::kPruned;
      } else {
        t.state = TrialState::kComplete;
        t.value = e[3].get<double>();
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(decisions, 8000);
  EXPECT_GT(pruned, 500);
}

TEST(HyperbandPruner, BracketsAsOptuna) {
  for (const auto& b : golden()["brackets"]) {
    HyperbandPrunerOptions o;
    o.min_resource = b["min_resource"].get<int64_t>();
    o.max_resource = b["max_resource"].get<int64_t>();
    o.reduction_factor = b["reduction_factor"].get<int>();
    o.study_name = b["study_name"].get<std::string>();
    const HyperbandPruner p(o);
    EXPECT_EQ(p.n_brackets({}), b["n_brackets"].get<int>()) << b["study_name"];
    for (int64_t n = 0; n < static_cast<int64_t>(b["brackets"].size()); ++n) {
      EXPECT_EQ(p.bracket({}, n), b["brackets"][static_cast<std::size_t>(n)].get<int>()) << b["study_name"] << " trial " << n;
    }
  }
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);  // the CRC-32 check value
}

TEST(HyperbandPruner, DefaultsAreOptunas) {
  const auto& d = golden()["defaults"];
  const HyperbandPrunerOptions h;
  EXPECT_EQ(h.min_resource, d["hyperband"]["min_resource"].get<int64_t>());
  EXPECT_EQ(h.reduction_factor, d["hyperband"]["reduction_factor"].get<int>());
  EXPECT_EQ(h.bootstrap_count, d["hyperband"]["bootstrap_count"].get<int>());
  EXPECT_FALSE(h.max_resource.has_value());
  const SuccessiveHalvingPrunerOptions s;
  EXPECT_EQ(s.reduction_factor, d["successive_halving"]["reduction_factor"].get<int>());
  EXPECT_EQ(s.min_early_stopping_rate, d["successive_halving"]["min_early_stopping_rate"].get<int>());
  EXPECT_EQ(s.bootstrap_count, d["successive_halving"]["bootstrap_count"].get<int>());
  EXPECT_FALSE(s.min_resource.has_value());
}

Trial trial_with(int64_t number, TrialState state, std::map<int64_t, double> intermediate) {
  Trial t;
  t.number = number;
  t.state = state;
  t.intermediate = std::move(intermediate);
  return t;
}

// With `auto` max_resource nothing is pruned before a trial completes; then max_resource is the
// completed trials' last step + 1.
TEST(HyperbandPruner, AutoMaxResourceWaitsForACompletedTrial) {
  HyperbandPrunerOptions o;
  o.study_name = "auto";
  const HyperbandPruner p(o);
  std::vector<Trial> study = {trial_with(0, TrialState::kRunning, {{0, 0.1}, {1, 0.1}})};
  const Trial bad = trial_with(1, TrialState::kRunning, {{0, 9.0}, {1, 9.0}});
  EXPECT_FALSE(p.should_prune(study, bad, Direction::kMinimize));
  EXPECT_FALSE(p.n_brackets(study).has_value());
  std::map<int64_t, double> curve;
  for (int64_t s = 0; s < 27; ++s) curve[s] = 0.1;
  study[0] = trial_with(0, TrialState::kComplete, curve);
  EXPECT_EQ(p.n_brackets(study), 4);  // floor(log3(27)) + 1
}

TEST(SuccessiveHalvingPruner, PrunesTheWorseHalfAtTheFirstRung) {
  SuccessiveHalvingPrunerOptions o;
  o.min_resource = 1;
  o.reduction_factor = 2;
  const SuccessiveHalvingPruner p(o);
  std::vector<Trial> study;
  for (int i = 0; i < 4; ++i) study.push_back(trial_with(i, TrialState::kComplete, {{0, 1.0 * i}, {1, 1.0 * i}, {2, 1.0 * i}}));
  EXPECT_FALSE(p.should_prune(study, trial_with(4, TrialState::kRunning, {{0, 9.0}}), Direction::kMinimize));  // before rung 0
  EXPECT_FALSE(p.should_prune(study, trial_with(4, TrialState::kRunning, {{0, 0.0}, {1, 0.5}}), Direction::kMinimize));
  EXPECT_TRUE(p.should_prune(study, trial_with(4, TrialState::kRunning, {{0, 0.0}, {1, 2.5}}), Direction::kMinimize));
  EXPECT_FALSE(p.should_prune(study, trial_with(4, TrialState::kRunning, {{0, 0.0}, {1, 2.5}}), Direction::kMaximize));
  EXPECT_TRUE(p.should_prune(study, trial_with(4, TrialState::kRunning, {{0, 0.0}, {1, kNaN}}), Direction::kMinimize));
}

TEST(HyperbandPruner, RejectsBadOptions) {
  auto message = [](auto make) {
    try {
      make();
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(message([] {
              HyperbandPrunerOptions o;
              o.reduction_factor = 1;
              HyperbandPruner p(o);
            }),
            "pruner.reduction_factor must be >= 2, got 1");
  EXPECT_EQ(message([] {
              HyperbandPrunerOptions o;
              o.min_resource = 10;
              o.max_resource = 5;
              HyperbandPruner p(o);
            }),
            "pruner.max_resource must be >= min_resource (10) or auto, got 5");
  EXPECT_EQ(message([] {
              HyperbandPrunerOptions o;
              o.bootstrap_count = 2;
              HyperbandPruner p(o);
            }),
            "pruner.bootstrap_count is 2 but max_resource is auto; set max_resource to a step count or bootstrap_count to 0");
  EXPECT_EQ(message([] {
              SuccessiveHalvingPrunerOptions o;
              o.min_resource = 0;
              SuccessiveHalvingPruner p(o);
            }),
            "pruner.min_resource must be >= 1 or auto, got 0");
  EXPECT_EQ(message([] {
              SuccessiveHalvingPrunerOptions o;
              o.min_early_stopping_rate = -1;
              SuccessiveHalvingPruner p(o);
            }),
            "pruner.min_early_stopping_rate must be >= 0, got -1");
}

}  // namespace
}  // namespace kiln::tune
