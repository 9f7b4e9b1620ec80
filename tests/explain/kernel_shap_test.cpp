// Kernel SHAP and Owen values against brute-force values from their definitions
// (tests/golden/make_shap_golden.py).
#include "kiln/explain/kernel_shap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"

namespace kiln::explain {
namespace {

const nlohmann::json& golden() {
  static const nlohmann::json g = [] {
    std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/explain/shap_golden.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str());
  }();
  return g;
}

torch::Tensor to_tensor(const nlohmann::json& rows) {
  std::vector<torch::Tensor> out;
  for (const auto& r : rows) out.push_back(torch::tensor(r.get<std::vector<double>>(), torch::kFloat64));
  return torch::stack(out);
}

// The value table as a coalition value function: row index = Σ mask_i 2^i.
CoalitionValue table_value(const torch::Tensor& table, int64_t* calls = nullptr) {
  return [table, calls](const torch::Tensor& masks) {
    if (calls) ++*calls;
    const auto index = (masks.to(torch::kInt64) * torch::pow(2, torch::arange(masks.size(1), torch::kInt64))).sum(1);
    return table.index_select(0, index);
  };
}

TEST(KernelShap, EnumeratesAndEqualsExactShapleyValues) {
  for (const auto& t : golden()["tables"]) {
    const int64_t m = t["m"];
    const auto table = to_tensor(t["values"]);
    int64_t calls = 0;
    const ShapValues r = kernel_shap(m, table_value(table, &calls));
    EXPECT_TRUE(r.exact) << "M=" << m;
    EXPECT_EQ(r.evaluations, int64_t{1} << m) << "every coalition once";
    EXPECT_LE(calls, 2) << "batched: the ends, then all coalitions at once";
    const auto expected = to_tensor(t["shapley"]);
    EXPECT_LT((r.values - expected).abs().max().item<double>(), 1e-6) << "M=" << m;
    EXPECT_LT((r.base + r.values.sum(0) - r.output).abs().max().item<double>(), 1e-9) << "efficiency, M=" << m;
  }
}

// The MLP of the golden file on masks, in float64 as numpy computes it.
CoalitionValue mlp_value(const nlohmann::json& g) {
  const auto w1 = to_tensor(g["w1"]), w2 = to_tensor(g["w2"]);
  const auto b1 = torch::tensor(g["b1"].get<std::vector<double>>(), torch::kFloat64);
  const auto b2 = torch::tensor(g["b2"].get<std::vector<double>>(), torch::kFloat64);
  return [=](const torch::Tensor& masks) {
    return torch::tanh(masks.to(torch::kFloat64).matmul(w1.t()) + b1).matmul(w2.t()) + b2;
  };
}

// Sampling (M = 14 > the 2^M budget): within 0.1 × max|φ| of the exact values at the default budget,
// for every seed tried, and exact efficiency always.
TEST(KernelShap, SamplesWithinToleranceAndKeepsEfficiencyExactly) {
  const auto& g = golden()["mlp"];
  const int64_t m = g["m"];
  const auto expected = to_tensor(g["shapley"]);
  const double scale = expected.abs().max().item<double>();
  for (uint64_t seed : {0, 1, 2}) {
    KernelShapOptions o;
    o.seed = seed;
    const ShapValues r = kernel_shap(m, mlp_value(g), o);
    EXPECT_FALSE(r.exact);
    EXPECT_EQ(r.evaluations, 2 * m + 2048 + 2);
    EXPECT_LT((r.values - expected).abs().max().item<double>(), 0.1 * scale) << "seed " << seed;
    EXPECT_LT((r.base + r.values.sum(0) - r.output).abs().max().item<double>(), 1e-9);
  }
  // Enough samples for every coalition: exact again.
  KernelShapOptions all;
  all.nsamples = int64_t{1} << m;
  const ShapValues r = kernel_shap(m, mlp_value(g), all);
  EXPECT_TRUE(r.exact);
  EXPECT_LT((r.values - expected).abs().max().item<double>(), 1e-6);
}

TEST(KernelShap, SameSeedSameValues) {
  const auto& g = golden()["mlp"];
  KernelShapOptions o;
  o.nsamples = 300;
  o.seed = 7;
  const auto a = kernel_shap(g["m"], mlp_value(g), o), b = kernel_shap(g["m"], mlp_value(g), o);
  EXPECT_TRUE(torch::equal(a.values, b.values));
}

TEST(KernelShap, TinyAndEmptyCoalitions) {
  const auto table = torch::tensor({{1.0}, {3.5}}, torch::kFloat64);
  const ShapValues one = kernel_shap(1, table_value(table));
  EXPECT_DOUBLE_EQ(one.values[0][0].item<double>(), 2.5);
  const ShapValues none = kernel_shap(0, [](const torch::Tensor& masks) {
    return torch::ones({masks.size(0), 2}, torch::kFloat64);
  });
  EXPECT_EQ(none.values.size(0), 0);
}

TEST(KernelShap, NegativeNsamplesIsAConfigError) {
  KernelShapOptions o;
  o.nsamples = -1;
  try {
    (void)kernel_shap(3, table_value(torch::zeros({8, 1}, torch::kFloat64)), o);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("nsamples must be >= 0"), std::string::npos) << e.what();
  }
}

// shap's l1_reg on enumerated coalitions (tests/golden/make_shap_l1_golden.py: scikit-learn's
// lars_path / LassoLarsIC on shap's augmented problem): the same features selected per output,
// the same values on them, exactly 0 elsewhere, efficiency exact.
TEST(KernelShap, L1SelectionEqualsShapWithScikitLearn) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/explain/shap_l1_golden.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto g = nlohmann::json::parse(ss.str());
  int checked = 0;
  for (const auto& c : g["cases"]) {
    const int64_t m = c["m"];
    torch::Tensor table;
    for (const auto& t : golden()["tables"]) {
      if (t["m"] == m) table = to_tensor(t["values"]);
    }
    ASSERT_TRUE(table.defined());
    KernelShapOptions o;
    parse_l1(c["l1"], o, "--l1");
    const ShapValues r = kernel_shap(m, table_value(table), o);
    const auto want = to_tensor(c["phi"]);
    EXPECT_LT((r.values - want).abs().max().item<double>(), 1e-6) << "M=" << m << " " << c["l1"];
    for (int64_t k = 0; k < 2; ++k) {
      const auto sel = c["selected"][k].get<std::vector<int64_t>>();
      for (int64_t i = 0; i < m; ++i) {
        if (std::find(sel.begin(), sel.end(), i) == sel.end()) {
          EXPECT_EQ(r.values[i][k].item<double>(), 0.0);
        }
      }
    }
    EXPECT_LT((r.base + r.values.sum(0) - r.output).abs().max().item<double>(), 1e-9);
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(KernelShap, L1ChoicesAndTheirErrors) {
  KernelShapOptions o;
  parse_l1("num_features(12)", o);
  EXPECT_EQ(o.l1, L1Selection::kNumFeatures);
  EXPECT_EQ(o.l1_features, 12);
  parse_l1("bic", o);
  EXPECT_EQ(o.l1, L1Selection::kBic);
  parse_l1("none", o);
  EXPECT_EQ(o.l1, L1Selection::kNone);
  for (const char* bad : {"num_features(0)", "num_features()", "num_features(x)", "num_features(3", "lasso", "AIC"}) {
    try {
      parse_l1(bad, o, "--l1");
      FAIL() << bad;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--l1 must be none, num_features(K) with K >= 1, aic or bic, got '" +
                                           std::string(bad) + "'"),
                std::string::npos)
          << e.what();
    }
  }
  // AIC/BIC need more coalitions than features + 1 to estimate the noise.
  KernelShapOptions few;
  few.nsamples = 6;
  few.l1 = L1Selection::kAic;
  try {
    (void)kernel_shap(14, mlp_value(golden()["mlp"]), few);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("raise --nsamples or use --l1 num_features(K)"), std::string::npos) << e.what();
  }
  // num_features(K) keeps at most K non-zero values per output, and sampling still adds up.
  KernelShapOptions three;
  parse_l1("num_features(3)", three);
  const ShapValues r = kernel_shap(14, mlp_value(golden()["mlp"]), three);
  EXPECT_LE((r.values.select(1, 0) != 0).sum().item<int64_t>(), 3);
  EXPECT_LT((r.base + r.values.sum(0) - r.output).abs().max().item<double>(), 1e-9);
}

TEST(OwenValues, EqualTheRecursiveDefinition) {
  int checked = 0;
  for (const auto& t : golden()["tables"]) {
    if (!t.contains("owen")) continue;
    const int64_t m = t["m"];
    const auto table = to_tensor(t["values"]);
    int64_t calls = 0;
    const ShapValues r = owen_values(m, table_value(table, &calls));
    EXPECT_EQ(calls, 1) << "one batched evaluation";
    EXPECT_LT((r.values - to_tensor(t["owen"])).abs().max().item<double>(), 1e-9) << "M=" << m;
    EXPECT_LT((r.base + r.values.sum(0) - r.output).abs().max().item<double>(), 1e-9);
    ++checked;
  }
  EXPECT_EQ(checked, 7);
}

// Quadratic, not exponential: 64 features need far fewer than 2^64 coalitions.
TEST(OwenValues, CostIsQuadratic) {
  const int64_t m = 64;
  int64_t rows = 0;
  const ShapValues r = owen_values(m, [&](const torch::Tensor& masks) {
    rows += masks.size(0);
    return masks.to(torch::kFloat64).sum(1, true);  // additive: Owen = Shapley = 1 each
  });
  EXPECT_LE(rows, 2 * m * m);
  EXPECT_LT((r.values - 1.0).abs().max().item<double>(), 1e-12);
}

}  // namespace
}  // namespace kiln::explain
