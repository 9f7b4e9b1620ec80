// k-means and shap.kmeans-style background summaries against scikit-learn
// (tests/golden/make_kmeans_golden.py).
#include "kiln/explain/kmeans.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"

namespace kiln::explain {
namespace {

const nlohmann::json& golden() {
  static const nlohmann::json g = [] {
    std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/explain/kmeans_golden.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str());
  }();
  return g;
}

torch::Tensor rows(const nlohmann::json& j) {
  std::vector<torch::Tensor> out;
  for (const auto& r : j) out.push_back(torch::tensor(r.get<std::vector<double>>(), torch::kFloat64));
  return torch::stack(out);
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Lloyd from given centres is deterministic: the same centres, labels, inertia and iterations as
// scikit-learn, for a tolerance that stops on unchanged labels and one that stops on the shift.
TEST(KMeans, LloydFromGivenCentresEqualsScikitLearn) {
  const auto& g = golden()["lloyd"];
  const auto x = rows(g["x"]), init = rows(g["init"]);
  for (const auto& run : g["runs"]) {
    KMeansOptions o;
    o.k = 4;
    o.tol = run["tol"];
    const KMeansResult r = kmeans(x, o, init);
    EXPECT_LT(max_diff(r.centers, rows(run["centers"])), 1e-12) << "tol " << o.tol;
    EXPECT_EQ(r.labels.to(torch::kInt64).equal(torch::tensor(run["labels"].get<std::vector<int64_t>>())), true);
    EXPECT_NEAR(r.inertia, run["inertia"].get<double>(), 1e-10);
    EXPECT_EQ(r.iterations, run["n_iter"].get<int64_t>()) << "tol " << o.tol;
    // shap.kmeans: centres rounded to values of their columns, weighted by cluster share.
    const WeightedRows s = summarize_background(x, o, init);
    EXPECT_LT(max_diff(s.rows, rows(run["summary_rows"])), 1e-15);
    EXPECT_LT(max_diff(s.weights, torch::tensor(run["summary_weights"].get<std::vector<double>>(), torch::kFloat64)), 1e-15);
    o.round_values = false;
    EXPECT_LT(max_diff(summarize_background(x, o, init).rows, rows(run["centers"])), 1e-12);
  }
}

// With k-means++ starts the generator differs from numpy's, but on separated clusters every start
// finds the same partition: the same centres (in sorted order) and inertia as scikit-learn.
TEST(KMeans, PlusPlusStartsFindTheClustersScikitLearnFinds) {
  const auto& g = golden()["blobs"];
  const auto x = rows(g["x"]);
  for (uint64_t seed : {0, 1, 2}) {
    KMeansOptions o;
    o.k = g["k"];
    o.seed = seed;
    const KMeansResult r = kmeans(x, o);
    // Sort centres lexicographically as the script does.
    std::vector<std::vector<double>> c;
    for (int64_t i = 0; i < r.centers.size(0); ++i) {
      c.push_back(std::vector<double>(r.centers[i].data_ptr<double>(), r.centers[i].data_ptr<double>() + r.centers.size(1)));
    }
    std::sort(c.begin(), c.end());
    for (std::size_t i = 0; i < c.size(); ++i) {
      for (std::size_t j = 0; j < c[i].size(); ++j) {
        EXPECT_NEAR(c[i][j], g["centers_sorted"][i][j].get<double>(), 1e-9) << "seed " << seed;
      }
    }
    EXPECT_NEAR(r.inertia, g["inertia"].get<double>(), 1e-8);
    const auto again = kmeans(x, o);
    EXPECT_TRUE(torch::equal(again.centers, r.centers)) << "same seed, same centres";
  }
}

// More clusters than distinct rows: empty clusters take the farthest rows, nothing is NaN, and the
// weights still sum to 1.
TEST(KMeans, EmptyClustersAreRefilled) {
  const auto x = torch::tensor({{0.0, 0.0}, {0.0, 0.0}, {1.0, 1.0}, {5.0, 5.0}, {5.0, 6.0}}, torch::kFloat64);
  KMeansOptions o;
  o.k = 3;
  const auto init = torch::tensor({{0.0, 0.0}, {0.1, 0.1}, {0.2, 0.2}}, torch::kFloat64);
  const KMeansResult r = kmeans(x, o, init);
  EXPECT_TRUE(torch::isfinite(r.centers).all().item<bool>());
  const WeightedRows s = summarize_background(x, o, init);
  EXPECT_NEAR(s.weights.sum().item<double>(), 1.0, 1e-12);
  EXPECT_LT(r.inertia, 2.0) << "the far pair gets a centre of its own";
}

TEST(KMeans, BadOptionsNameTheField) {
  const auto x = torch::zeros({3, 2}, torch::kFloat64);
  auto message = [&](KMeansOptions o, torch::Tensor init = {}) {
    try {
      (void)kmeans(x, o, init);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  KMeansOptions o;
  o.k = 0;
  EXPECT_NE(message(o).find("k (clusters) must be >= 1, got 0"), std::string::npos);
  o.k = 4;
  EXPECT_NE(message(o).find("k = 4 clusters need at least as many rows, got 3; lower k"), std::string::npos);
  o.k = 2;
  o.n_init = 0;
  EXPECT_NE(message(o).find("n_init must be >= 1"), std::string::npos);
  o.n_init = 1;
  o.tol = -1;
  EXPECT_NE(message(o).find("tol must be >= 0"), std::string::npos);
  o.tol = 0;
  EXPECT_NE(message(o, torch::zeros({3, 2}, torch::kFloat64)).find("init must be [k = 2, 2] centres"), std::string::npos);
}

}  // namespace
}  // namespace kiln::explain
