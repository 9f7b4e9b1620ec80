// Kernel SHAP's least squares from sufficient statistics (src/explain/shap_regression.h) against
// the dense float64 computation it replaces: Zᵀ W Z and Zᵀ W Y by matrix products, the constrained
// system solved by LibTorch's LU.
#include "shap_regression.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>

namespace kiln::explain::detail {
namespace {

struct Problem {
  int64_t rows, m, c;
  std::vector<uint8_t> masks;
  std::vector<double> weights, y;
};

// Rows in weight groups (as Kernel SHAP makes them: whole sizes, repeat counts) plus a few rows
// of distinct weights, so both the bit-column and the pairwise paths run.
Problem random_problem(int64_t rows, int64_t m, int64_t c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  Problem p{rows, m, c, {}, {}, {}};
  for (int64_t r = 0; r < rows; ++r) {
    const double density = 0.1 + 0.8 * (static_cast<double>(r % 7) / 6.0);
    for (int64_t i = 0; i < m; ++i) p.masks.push_back(std::bernoulli_distribution(density)(rng) ? 1 : 0);
    p.weights.push_back(r < rows - 5 ? 0.25 * static_cast<double>(1 + r % 3) : 0.01 * static_cast<double>(r));
    for (int64_t k = 0; k < c; ++k) p.y.push_back(u(rng));
  }
  return p;
}

torch::Tensor as_tensor(const std::vector<double>& v, int64_t rows, int64_t cols) {
  return torch::from_blob(const_cast<double*>(v.data()), {rows, cols}, torch::kFloat64).clone();
}

TEST(ShapRegression, DesignEqualsDenseProducts) {
  for (int64_t m : {3, 70, 130}) {
    const Problem p = random_problem(300, m, 2, static_cast<uint64_t>(m));
    const Design d = make_design(p.masks.data(), p.weights.data(), p.rows, m, p.y.data(), p.c);
    std::vector<double> zd(p.masks.begin(), p.masks.end());
    const auto z = as_tensor(zd, p.rows, m);
    const auto w = torch::from_blob(const_cast<double*>(p.weights.data()), {p.rows}, torch::kFloat64);
    const auto y = as_tensor(p.y, p.rows, p.c);
    const auto gram = (z.t() * w.unsqueeze(0)).matmul(z);
    const auto zwy = (z.t() * w.unsqueeze(0)).matmul(y);
    EXPECT_LT((as_tensor(d.gram, m, m) - gram).abs().max().item<double>(), 1e-9) << "M=" << m;
    EXPECT_LT((as_tensor(d.zwy, m, p.c) - zwy).abs().max().item<double>(), 1e-9) << "M=" << m;
  }
}

TEST(ShapRegression, ConstrainedSolveEqualsDenseSolve) {
  const int64_t m = 40, c = 3;
  const Problem p = random_problem(400, m, c, 11);
  const Design d = make_design(p.masks.data(), p.weights.data(), p.rows, m, p.y.data(), c);
  const std::vector<double> delta = {0.5, -1.25, 2.0};
  std::vector<int64_t> all(m), outputs = {0, 1, 2};
  std::iota(all.begin(), all.end(), 0);
  std::vector<double> phi(static_cast<std::size_t>(m * c), 0.0);
  solve_constrained(d, all, outputs, delta.data(), phi.data());
  // Dense: eliminate the last feature, regress on the others by LU.
  std::vector<double> zd(p.masks.begin(), p.masks.end());
  const auto z = as_tensor(zd, p.rows, m);
  const auto w = torch::from_blob(const_cast<double*>(p.weights.data()), {p.rows}, torch::kFloat64);
  const auto dl = torch::tensor(delta, torch::kFloat64);
  const auto last = z.select(1, m - 1).unsqueeze(1);
  const auto y = as_tensor(p.y, p.rows, c) - last * dl.unsqueeze(0);
  const auto x = z.slice(1, 0, m - 1) - last;
  const auto wx = x.t() * w.unsqueeze(0);
  const auto sol = torch::linalg_solve(wx.matmul(x), wx.matmul(y));
  const auto got = as_tensor(phi, m, c);
  EXPECT_LT((got.slice(0, 0, m - 1) - sol).abs().max().item<double>(), 1e-8);
  EXPECT_LT((got.sum(0) - dl).abs().max().item<double>(), 1e-12) << "efficiency exactly";

  // A subset of features, one output: the others stay untouched, the constraint holds on the subset.
  std::vector<double> part(static_cast<std::size_t>(m * c), 7.0);
  solve_constrained(d, {4, 9, 2}, {1}, delta.data(), part.data());
  EXPECT_NEAR(part[4 * c + 1] + part[9 * c + 1] + part[2 * c + 1], delta[1], 1e-12);
  EXPECT_EQ(part[0 * c + 1], 7.0);
  EXPECT_EQ(part[4 * c + 0], 7.0);
}

// Fewer distinct coalitions than features: the system is singular and the least-norm solution is
// returned (finite, efficiency still exact).
TEST(ShapRegression, SingularSystemFallsBackToLeastNorm) {
  const int64_t m = 12, c = 1;
  Problem p = random_problem(5, m, c, 3);
  const Design d = make_design(p.masks.data(), p.weights.data(), p.rows, m, p.y.data(), c);
  std::vector<int64_t> all(m);
  std::iota(all.begin(), all.end(), 0);
  const double delta = 1.5;
  std::vector<double> phi(static_cast<std::size_t>(m), 0.0);
  solve_constrained(d, all, {0}, &delta, phi.data());
  double sum = 0;
  for (double v : phi) {
    EXPECT_TRUE(std::isfinite(v));
    sum += v;
  }
  EXPECT_NEAR(sum, delta, 1e-9);
}

}  // namespace
}  // namespace kiln::explain::detail
