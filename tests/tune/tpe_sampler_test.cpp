#include "kiln/tune/tpe_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"
#include "kiln/tune/random_sampler.h"
#include "tune_test_util.h"

namespace kiln::tune {
namespace {

const nlohmann::json& golden() {
  static const nlohmann::json j = load_golden("tpe");
  return j;
}

bool near(double got, double want, double rel = 1e-9) {
  if (std::isinf(want) || std::isinf(got)) return got == want;
  return std::fabs(got - want) <= rel * std::fabs(want) + 1e-12;
}

::testing::AssertionResult all_near(const std::vector<double>& got, const nlohmann::json& want, const std::string& what) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << want.size();
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double w = want[i].is_null() ? kNaN : want[i].get<double>();
    if (!near(got[i], w)) return ::testing::AssertionFailure() << what << "[" << i << "]: " << got[i] << " vs " << w;
  }
  return ::testing::AssertionSuccess();
}

TrialState state_of(const std::string& s) {
  if (s == "complete") return TrialState::kComplete;
  if (s == "pruned") return TrialState::kPruned;
  if (s == "fail") return TrialState::kFailed;
  return TrialState::kRunning;
}

SearchSpace space_of(const nlohmann::json& j) {
  SearchSpace space;
  for (const auto& p : j) {
    const auto name = p["name"].get<std::string>();
    space.emplace_back(name, Distribution::from_json(p["distribution"], "space." + name));
  }
  return space;
}

std::vector<Trial> trials_of(const nlohmann::json& j, const SearchSpace& space) {
  std::vector<Trial> out;
  for (const auto& t : j) {
    Trial trial;
    trial.number = t["number"].get<int64_t>();
    trial.id = trial.number;
    trial.state = state_of(t["state"].get<std::string>());
    if (!t["value"].is_null()) trial.value = t["value"].get<double>();
    for (const auto& [k, v] : t["intermediate"].items()) trial.intermediate[std::stoll(k)] = v.is_null() ? kNaN : v.get<double>();
    for (const auto& [name, d] : space) {
      if (t["params"].contains(name)) {
        trial.params[name] = t["params"][name].get<double>();
        trial.distributions[name] = d;
      }
    }
    out.push_back(trial);
  }
  return out;
}

// Checks one estimator against Optuna's.
void expect_estimator(const ParzenEstimator& pe, const SearchSpace& group, const nlohmann::json& want,
                      const std::string& where) {
  EXPECT_TRUE(all_near(pe.weights(), want["weights"], where + " weights"));
  const bool tie_dependent = want["tie_order_dependent"].get<bool>();
  for (std::size_t p = 0; p < group.size(); ++p) {
    const auto& w = want["params"][group[p].first];
    const std::string at = where + " " + group[p].first;
    if (!w["categorical_weights"].is_null()) {
      const auto& cw = pe.categorical_weights(p);
      ASSERT_EQ(cw.size(), w["categorical_weights"].size()) << at;
      for (std::size_t r = 0; r < cw.size(); ++r) EXPECT_TRUE(all_near(cw[r], w["categorical_weights"][r], at + " categorical row"));
      continue;
    }
    EXPECT_TRUE(near(pe.low(p), w["low"].get<double>())) << at;
    EXPECT_TRUE(near(pe.high(p), w["high"].get<double>())) << at;
    EXPECT_EQ(pe.step(p).has_value(), !w["q"].is_null()) << at;
    if (pe.step(p) && !w["q"].is_null()) {
      EXPECT_TRUE(near(*pe.step(p), w["q"].get<double>())) << at;
    }
    EXPECT_TRUE(all_near(pe.mus(p), w["mus"], at + " mus"));
    // Bandwidths only where the order of equal centres cannot matter (see the golden script).
    if (!tie_dependent) {
      EXPECT_TRUE(all_near(pe.sigmas(p), w["sigmas"], at + " sigmas"));
    }
  }
}

// Optuna 3.1's split and estimators on 85 seeded histories (tests/golden/make_tpe_golden.py).
TEST(TpeSampler, FitsAsOptuna) {
  int checked = 0, log_pdfs = 0;
  for (std::size_t ci = 0; ci < golden()["cases"].size(); ++ci) {
    const auto& c = golden()["cases"][ci];
    const SearchSpace space = space_of(c["space"]);
    const auto trials = trials_of(c["trials"], space);
    TpeSamplerOptions o;
    o.multivariate = c["multivariate"].get<bool>();
    o.constant_liar = c["constant_liar"].get<bool>();
    o.seed = 1;
    const TpeSampler tpe(o);
    const Direction dir = c["direction"] == "maximize" ? Direction::kMaximize : Direction::kMinimize;
    for (const auto& f : c["fits"]) {
      SearchSpace group;
      for (const auto& name : f["params"]) {
        group.push_back(*std::find_if(space.begin(), space.end(), [&](const auto& p) { return p.first == name; }));
      }
      const std::string where = "case " + std::to_string(ci) + " (" + c["space_name"].get<std::string>() + ", " +
                                std::to_string(trials.size()) + " trials)";
      if (o.multivariate) {
        EXPECT_EQ(TpeSampler::joint_space(space, trials).size(), group.size()) << where;
      }
      const TpeFit fit = tpe.fit(group, trials, dir);
      EXPECT_EQ(fit.n_finished, f["n"].get<int>()) << where;
      if (f["n"].get<int>() == 0) continue;
      EXPECT_EQ(fit.n_below, f["gamma"].get<int>()) << where;
      EXPECT_EQ(fit.below, f["below"].get<std::vector<int64_t>>()) << where;
      EXPECT_EQ(fit.above, f["above"].get<std::vector<int64_t>>()) << where;
      expect_estimator(*fit.l, group, f["estimators"]["below"], where + " below");
      expect_estimator(*fit.g, group, f["estimators"]["above"], where + " above");
      std::vector<std::vector<double>> points;
      for (const auto& [name, d] : group) points.push_back(f["points"][name].get<std::vector<double>>());
      if (!f["estimators"]["below"]["tie_order_dependent"].get<bool>()) {
        EXPECT_TRUE(all_near(fit.l->log_pdf(points), f["log_pdf_below"], where + " log_pdf below"));
        ++log_pdfs;
      }
      if (!f["estimators"]["above"]["tie_order_dependent"].get<bool>()) {
        EXPECT_TRUE(all_near(fit.g->log_pdf(points), f["log_pdf_above"], where + " log_pdf above"));
        ++log_pdfs;
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 90);
  EXPECT_GE(log_pdfs, 160);
}

TEST(TpeSampler, GammaAndWeightsAreOptunas) {
  const auto& g = golden()["default_gamma"];
  for (std::size_t n = 0; n < g.size(); ++n) EXPECT_EQ(default_tpe_gamma(static_cast<int>(n)), g[n].get<int>()) << n;
  const auto& w = golden()["default_weights"];
  for (std::size_t n = 0; n < w.size(); ++n) EXPECT_TRUE(all_near(default_tpe_weights(n), w[n], "weights(" + std::to_string(n) + ")"));
}

SearchSpace every_kind() {
  Distribution cat;
  cat.kind = Distribution::Kind::kCategorical;
  cat.choices = {"a", "b", "c"};
  Distribution one;
  one.kind = Distribution::Kind::kCategorical;
  one.choices = {7};
  return {{"f", make_distribution(Distribution::Kind::kFloat, -2, 3)},
          {"lf", make_distribution(Distribution::Kind::kFloat, 1e-4, 1, true)},
          {"sf", make_distribution(Distribution::Kind::kFloat, 0, 1, false, 0.3)},  // grid 0, .3, .6, .9
          {"i", make_distribution(Distribution::Kind::kInt, -3, 4)},
          {"si", make_distribution(Distribution::Kind::kInt, 0, 20, false, 6.0)},  // grid 0, 6, 12, 18
          {"li", make_distribution(Distribution::Kind::kInt, 1, 1000, true)},
          {"c", cat},
          {"single", one},
          {"fixed", make_distribution(Distribution::Kind::kFloat, 2, 2)}};
}

double toy_objective(const std::map<std::string, double>& p) {
  double v = 0;
  for (const auto& [k, x] : p) v += std::sin(3 * x) + 0.1 * x;
  return v;
}

// Runs `sampler` for n trials on toy_objective, every few trials pruned or left running.
std::vector<Trial> run_study(Sampler& sampler, const SearchSpace& space, int n, Direction dir) {
  std::vector<Trial> history;
  for (int i = 0; i < n; ++i) {
    Trial t;
    t.number = i;
    t.params = sampler.sample(space, history, dir);
    for (const auto& [name, d] : space) t.distributions[name] = d;
    const double v = toy_objective(t.params);
    if (i % 7 == 3) {
      t.state = TrialState::kPruned;
      t.intermediate = {{0, v + 1}, {1, v + 0.5}};
    } else if (i % 11 == 5) {
      t.state = TrialState::kRunning;
    } else {
      t.state = TrialState::kComplete;
      t.value = v;
    }
    history.push_back(t);
  }
  return history;
}

TEST(TpeSampler, ProposalsLieInTheDomain) {
  const SearchSpace space = every_kind();
  for (bool multivariate : {false, true}) {
    for (bool liar : {false, true}) {
      TpeSamplerOptions o;
      o.seed = 7;
      o.multivariate = multivariate;
      o.constant_liar = liar;
      o.n_startup_trials = 5;
      TpeSampler tpe(o);
      const auto history = run_study(tpe, space, 60, liar ? Direction::kMaximize : Direction::kMinimize);
      for (const auto& t : history) {
        ASSERT_EQ(t.params.size(), space.size());
        for (const auto& [name, d] : space) {
          EXPECT_TRUE(d.contains(t.params.at(name))) << name << " = " << t.params.at(name) << " trial " << t.number;
        }
        EXPECT_EQ(t.params.at("single"), 0.0);
        EXPECT_EQ(t.params.at("fixed"), 2.0);
      }
    }
  }
}

TEST(TpeSampler, SameSeedSameProposals) {
  const SearchSpace space = every_kind();
  TpeSamplerOptions o;
  o.seed = 42;
  TpeSampler a(o), b(o);
  const auto ha = run_study(a, space, 30, Direction::kMinimize);
  const auto hb = run_study(b, space, 30, Direction::kMinimize);
  for (std::size_t i = 0; i < ha.size(); ++i) EXPECT_EQ(ha[i].params, hb[i].params) << "trial " << i;
  o.seed = 43;
  TpeSampler c(o);
  const auto hc = run_study(c, space, 30, Direction::kMinimize);
  int same = 0;
  for (std::size_t i = 0; i < ha.size(); ++i) same += ha[i].params == hc[i].params;
  EXPECT_LT(same, 3);
}

// Before n_startup_trials finished trials, proposals ignore the history (uniform); from then on
// they concentrate where the good trials are.
TEST(TpeSampler, StartupTrialsAreRandom) {
  const SearchSpace space = {{"x", make_distribution(Distribution::Kind::kFloat, 0, 10)}};
  auto history_of = [](int n) {
    std::vector<Trial> h;
    for (int i = 0; i < n; ++i) {
      Trial t;
      t.number = i;
      t.state = TrialState::kComplete;
      t.params["x"] = i == 0 ? 0.3 : 3 + 0.7 * i;  // the best trial near 0, the others above 3
      t.value = t.params["x"];
      h.push_back(t);
    }
    return h;
  };
  auto share_near_zero = [&](int n_history) {
    int near_zero = 0;
    for (uint64_t seed = 0; seed < 300; ++seed) {
      TpeSamplerOptions o;
      o.seed = seed;
      TpeSampler tpe(o);
      near_zero += tpe.sample(space, history_of(n_history), Direction::kMinimize).at("x") < 2.0;
    }
    return near_zero / 300.0;
  };
  const double startup = share_near_zero(9);
  EXPECT_GT(startup, 0.13);
  EXPECT_LT(startup, 0.27);  // uniform: 0.20
  EXPECT_GT(share_near_zero(10), 0.5);
}

double quadratic(const std::map<std::string, double>& p) {
  return (p.at("x") - 1.3) * (p.at("x") - 1.3) + (p.at("y") + 0.7) * (p.at("y") + 0.7);
}

double best_of(Sampler& s, int n) {
  const SearchSpace space = {{"x", make_distribution(Distribution::Kind::kFloat, -5, 5)},
                             {"y", make_distribution(Distribution::Kind::kFloat, -5, 5)}};
  std::vector<Trial> h;
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i) {
    Trial t;
    t.number = i;
    t.state = TrialState::kComplete;
    t.params = s.sample(space, h, Direction::kMinimize);
    t.value = quadratic(t.params);
    best = std::min(best, *t.value);
    h.push_back(t);
  }
  return best;
}

TEST(TpeSampler, BeatsRandomOnAQuadratic) {
  std::vector<double> tpe_best, random_best;
  int wins = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    TpeSamplerOptions o;
    o.seed = seed;
    TpeSampler tpe(o);
    RandomSampler random(RandomSamplerOptions{seed + 1000});
    tpe_best.push_back(best_of(tpe, 50));
    random_best.push_back(best_of(random, 50));
    wins += tpe_best.back() < random_best.back();
  }
  std::sort(tpe_best.begin(), tpe_best.end());
  std::sort(random_best.begin(), random_best.end());
  EXPECT_LT(tpe_best[10], 0.5 * random_best[10]) << "median best: tpe " << tpe_best[10] << ", random " << random_best[10];
  EXPECT_GE(wins, 14);
}

TEST(TpeSampler, ConstantLiarPutsRunningTrialsAbove) {
  const SearchSpace space = {{"x", make_distribution(Distribution::Kind::kFloat, 0, 1)}};
  std::vector<Trial> h;
  for (int i = 0; i < 12; ++i) {
    Trial t;
    t.number = i;
    t.state = i == 11 ? TrialState::kRunning : TrialState::kComplete;
    t.params["x"] = i / 12.0;
    if (i != 11) t.value = i;
    h.push_back(t);
  }
  TpeSamplerOptions o;
  o.constant_liar = true;
  o.seed = 0;
  const auto fit = TpeSampler(o).fit(space, h, Direction::kMinimize);
  EXPECT_EQ(fit.n_finished, 11);
  EXPECT_EQ(fit.below, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(fit.above.back(), 11);
  o.constant_liar = false;
  const auto plain = TpeSampler(o).fit(space, h, Direction::kMinimize);
  EXPECT_EQ(plain.above.back(), 10);
}

TEST(TpeSampler, RejectsBadOptions) {
  auto message = [](TpeSamplerOptions o) {
    try {
      TpeSampler s(o);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  TpeSamplerOptions o;
  o.n_startup_trials = -1;
  EXPECT_EQ(message(o), "tpe.n_startup_trials must be >= 0, got -1");
  o = {};
  o.n_ei_candidates = 0;
  EXPECT_EQ(message(o), "tpe.n_ei_candidates must be >= 1, got 0");
  o = {};
  o.prior_weight = 0;
  EXPECT_EQ(message(o), "tpe.prior_weight must be a positive number, got 0.000000");
}

}  // namespace
}  // namespace kiln::tune
