// The L-BFGS solver (train.solver lbfgs) against scikit-learn's LogisticRegression: the same
// objective, so the same minimiser (golden values: tests/golden/make_logreg_golden.py); exact
// resume of its optimizer state; and the options it cannot honour refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"
#include "kiln/nn/model.h"
#include "kiln/train/trainer.h"
#include "fused_lbfgs.h"
#include "linear_kernels.h"
#include "linear_lbfgs.h"
#include "nn/nn_test_util.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {

nlohmann::json golden() {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/train/logreg.json");
  EXPECT_TRUE(in) << "missing tests/golden/train/logreg.json (run tests/golden/make_logreg_golden.py)";
  return nlohmann::json::parse(in);
}

train::LabeledBatch batch_of(const nlohmann::json& c) {
  const int64_t n = c["rows"];
  train::LabeledBatch r;
  r.x = nn::Batch(n);
  r.x.set(nn::kBagIndices, torch::tensor(c["indices"].get<std::vector<int64_t>>(), torch::kInt64));
  r.x.set(nn::kBagOffsets, torch::tensor(c["offsets"].get<std::vector<int64_t>>(), torch::kInt64));
  r.x.set(nn::kBagWeights, torch::tensor(c["values"].get<std::vector<float>>(), torch::kFloat32));
  r.y = c["labels"].get<std::vector<int64_t>>();
  return r;
}

std::shared_ptr<nn::Model> linear(int64_t features, int64_t classes, const std::string& family = "linear") {
  torch::manual_seed(11);
  nn::ModelSpec spec;
  spec.family = family;
  spec.params = nlohmann::json::object();
  return nn::make_model(spec, nn::bag_spec(features), classes);
}

train::TrainerOptions lbfgs_options(double C, const std::string& class_weight) {
  train::TrainerOptions o;
  o.solver = "lbfgs";
  o.C = C;
  o.epochs = 100;
  o.lbfgs_iterations = 10;
  o.tol = 1e-6;
  o.early_stopping_patience = 0;
  o.calibrate = "none";
  o.loss.class_weight = class_weight;
  return o;
}

}  // namespace

TEST(LbfgsSolver, ReachesScikitLearnsLogisticRegression) {
  const auto g = golden();
  for (const auto& c : g["cases"]) {
    const std::string name = c["name"];
    const int64_t d = c["features"], k = c["classes"];
    const auto data = batch_of(c);
    auto model = linear(d, k);
    const std::string cw = c["class_weight"] == "balanced" ? "balanced" : "none";
    const auto result = train::train_model(*model, data, nullptr, k, lbfgs_options(c["C"], cw));
    ASSERT_FALSE(result.history.empty());
    EXPECT_LT(result.history.size(), 100U) << name << ": did not stop at convergence";
    EXPECT_NEAR(result.history.back().train_loss, c["data_loss"].get<double>(), 1e-4) << name;
    const auto parts = model->linear_parts();
    ASSERT_TRUE(parts.has_value());
    const auto table = parts->table.contiguous();
    const auto coef = c["coef"].get<std::vector<double>>();
    double worst = 0, scale = 0;
    for (int64_t f = 0; f < d; ++f) {
      for (int64_t q = 0; q < k; ++q) {
        const double want = coef[static_cast<std::size_t>(q * d + f)];
        worst = std::max(worst, std::abs(table[f][q].item<double>() - want));
        scale = std::max(scale, std::abs(want));
      }
    }
    EXPECT_LT(worst, 2e-3 * scale) << name << ": max |W - coef_ᵀ| " << worst << " (largest coefficient " << scale << ")";
    const auto intercept = c["intercept"].get<std::vector<double>>();
    double mean_k = 0, mean_s = 0;
    for (int64_t q = 0; q < k; ++q) {
      mean_k += parts->bias[q].item<double>() / static_cast<double>(k);
      mean_s += intercept[static_cast<std::size_t>(q)] / static_cast<double>(k);
    }
    for (int64_t q = 0; q < k; ++q) {
      EXPECT_NEAR(parts->bias[q].item<double>() - mean_k, intercept[static_cast<std::size_t>(q)] - mean_s, 2e-3 * scale)
          << name << " intercept " << q;
    }
  }
}

TEST(LbfgsSolver, ResumesExactly) {
  const auto c = golden()["cases"][0];
  const int64_t d = c["features"], k = c["classes"];
  const auto data = batch_of(c);
  auto options = lbfgs_options(1.0, "balanced");
  options.epochs = 4;
  options.lbfgs_iterations = 3;
  options.tol = 0;
  auto whole = linear(d, k);
  const auto r_whole = train::train_model(*whole, data, nullptr, k, options);

  const fs::path dir = fs::temp_directory_path() / ("kiln_lbfgs_resume_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  options.run_dir = dir.string();
  options.stop_after_epochs = 2;
  auto part = linear(d, k);
  (void)train::train_model(*part, data, nullptr, k, options);
  options.stop_after_epochs = 0;
  options.resume = true;
  auto resumed = linear(d, k);
  const auto r_resumed = train::train_model(*resumed, data, nullptr, k, options);
  fs::remove_all(dir);
  ASSERT_EQ(r_whole.history.size(), r_resumed.history.size());
  EXPECT_DOUBLE_EQ(r_whole.history.back().train_loss, r_resumed.history.back().train_loss);
  EXPECT_TRUE(torch::equal(whole->linear_parts()->table, resumed->linear_parts()->table));
}

TEST(LbfgsSolver, RefusesWhatItCannotHonour) {
  const auto c = golden()["cases"][0];
  const int64_t d = c["features"], k = c["classes"];
  const auto data = batch_of(c);
  auto expect_error = [&](train::TrainerOptions o, const std::string& family, const std::string& needle) {
    auto model = linear(d, k, family);
    try {
      (void)train::train_model(*model, data, nullptr, k, o);
      ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(lbfgs_options(1.0, "none"), "embedbag", "family linear");
  auto focal = lbfgs_options(1.0, "none");
  focal.loss.kind = "focal";
  expect_error(focal, "linear", "train.solver lbfgs needs train.loss cross_entropy");
  expect_error(lbfgs_options(0.0, "none"), "linear", "train.C must be > 0");
  auto iters = lbfgs_options(1.0, "none");
  iters.lbfgs_iterations = 0;
  expect_error(iters, "linear", "train.lbfgs_iterations must be >= 1");
  auto history = lbfgs_options(1.0, "none");
  history.lbfgs_history = 0;
  expect_error(history, "linear", "train.lbfgs_history must be >= 1");
}

TEST(LbfgsSolver, TheObjectiveStaysFiniteWhenTheTrueClassIsFarBehind) {
  // One example of class 0 whose logit trails class 1's by 200: exp(z_0 - max) underflows to 0 in
  // float32, yet -log p_0 = log(1 + e^-200 ...) + 200 is finite. (L-BFGS's line search tries such
  // long steps; an infinite loss there stopped WordNet's training as "diverged".)
  nn::Batch x(1);
  x.set(nn::kBagIndices, torch::tensor({0}, torch::kInt64));
  x.set(nn::kBagOffsets, torch::tensor({0}, torch::kInt64));
  x.set(nn::kBagWeights, torch::tensor({1.0f}, torch::kFloat32));
  train::LinearObjective objective(x, {0}, {1.0f, 1.0f}, 1, 2, /*C=*/1e12);
  const auto table = torch::tensor({{-100.0f, 100.0f}});
  const auto bias = torch::zeros({2});
  torch::Tensor grad_table, grad_bias;
  double data_loss = 0;
  const double f = objective.evaluate(table, bias, grad_table, grad_bias, &data_loss);
  EXPECT_NEAR(data_loss, 200.0, 1e-9);  // log(1 + e^-200) + 200
  EXPECT_TRUE(std::isfinite(f));
  // The gradient: p - onehot = (0 - 1, 1 - 0) on the bias.
  EXPECT_NEAR(grad_bias[0].item<float>(), -1.0f, 1e-6);
  EXPECT_NEAR(grad_bias[1].item<float>(), 1.0f, 1e-6);
}

TEST(LbfgsSolver, TheKernelsMatchDoublePrecision) {
  // softmax_residuals: rows of 3, 16 and 45 classes (the row maximum found in lanes and in the
  // tail), logits over [-140, 20] so that some exponentials fall below float32's normal range;
  // its own exp polynomial against double precision.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> logit(-140.0f, 20.0f);
  for (const int64_t k : {3, 16, 45}) {
    SCOPED_TRACE("classes " + std::to_string(k));
    const int64_t rows = 9;
    std::vector<float> z(static_cast<std::size_t>(rows * k));
    for (auto& v : z) v = logit(rng);
    std::vector<int64_t> y;
    std::vector<float> s;
    for (int64_t i = 0; i < rows; ++i) {
      y.push_back((i * 7) % k);
      s.push_back(0.5f + static_cast<float>(i % 3));
    }
    const double inv_n = 1.0 / 17.0;
    double want_loss = 0;
    std::vector<double> want(z.size());
    for (int64_t i = 0; i < rows; ++i) {
      const float* zi = z.data() + i * k;
      const double m = *std::max_element(zi, zi + k);
      double sum = 0;
      for (int64_t q = 0; q < k; ++q) sum += std::exp(static_cast<double>(zi[q]) - m);
      want_loss += s[static_cast<std::size_t>(i)] * (std::log(sum) - (zi[y[static_cast<std::size_t>(i)]] - m));
      for (int64_t q = 0; q < k; ++q) {
        const double p = std::exp(static_cast<double>(zi[q]) - m) / sum;
        want[static_cast<std::size_t>(i * k + q)] = s[static_cast<std::size_t>(i)] * inv_n * (p - (q == y[static_cast<std::size_t>(i)] ? 1.0 : 0.0));
      }
    }
    const double loss = train::softmax_residuals(z.data(), 0, rows, k, k, y.data(), s.data(), inv_n);
    EXPECT_NEAR(loss, want_loss, 1e-6 * std::abs(want_loss));
    for (std::size_t j = 0; j < z.size(); ++j) EXPECT_NEAR(z[j], want[j], 1e-6 * inv_n * 2.5 + 1e-6 * std::abs(want[j])) << j;
  }
  // dot_span and max_abs_span over a length with a tail past the blocks and lanes.
  std::normal_distribution<float> normal;
  std::vector<float> a(1000), b(1000);
  double want_dot = 0;
  for (std::size_t j = 0; j < a.size(); ++j) {
    a[j] = normal(rng);
    b[j] = normal(rng);
    want_dot += static_cast<double>(a[j]) * b[j];
  }
  EXPECT_NEAR(train::dot_span(a.data(), b.data(), 1000), want_dot, 1e-5 * std::sqrt(1000.0));
  a[999] = -50.0f;
  EXPECT_EQ(train::max_abs_span(a.data(), 1000), 50.0f);  // in the tail
  a[100] = 60.0f;
  EXPECT_EQ(train::max_abs_span(a.data(), 1000), 60.0f);  // in the lanes
  EXPECT_EQ(train::max_abs_span(a.data(), 0), 0.0f);
}

TEST(LbfgsSolver, TheObjectiveAndGradientEqualAutogradsAtAnyThreadCount) {
  // A random sparse problem (empty rows, a feature twice in one row, class weights): the
  // objective's value and gradient against LibTorch's autograd over the dense X, with the rows cut
  // into 1, 2 and 3 blocks (at::set_num_threads) — the block split changes no logit's order of sums.
  torch::manual_seed(5);
  const int64_t rows = 37, features = 23, classes = 4;
  std::vector<int64_t> indices, offsets;
  std::vector<float> values;
  auto dense = torch::zeros({rows, features});
  for (int64_t i = 0; i < rows; ++i) {
    offsets.push_back(static_cast<int64_t>(indices.size()));
    const int64_t count = i % 7 == 3 ? 0 : 1 + (i * 5) % 6;
    for (int64_t e = 0; e < count; ++e) {
      const int64_t f = (i * 11 + e * 7) % features;
      const float v = 0.25f + static_cast<float>((i + e) % 5) * 0.5f;
      indices.push_back(f);
      values.push_back(v);
      dense[i][f] += v;
    }
    if (i == 5) {  // the same feature again in one row
      indices.push_back(indices.back());
      values.push_back(1.5f);
      dense[i][indices.back()] += 1.5f;
    }
  }
  nn::Batch x(rows);
  x.set(nn::kBagIndices, torch::tensor(indices, torch::kInt64));
  x.set(nn::kBagOffsets, torch::tensor(offsets, torch::kInt64));
  x.set(nn::kBagWeights, torch::tensor(values, torch::kFloat32));
  std::vector<int64_t> y;
  for (int64_t i = 0; i < rows; ++i) y.push_back((i * 3) % classes);
  const std::vector<float> class_weights = {1.0f, 2.5f, 0.5f, 1.25f};
  const double C = 0.7;
  const auto table = torch::randn({features, classes});
  const auto bias = torch::randn({classes});

  // F = Σ s_i (−log p_{y_i}) / Σ s_i + ‖W‖² / (2 C Σ s_i)
  auto w = table.clone().to(torch::kFloat64).requires_grad_();
  auto b = bias.clone().to(torch::kFloat64).requires_grad_();
  const auto target = torch::tensor(y, torch::kInt64);
  const auto s = torch::tensor(class_weights, torch::kFloat64).index_select(0, target);
  const auto nll = -torch::log_softmax(dense.to(torch::kFloat64).mm(w) + b, 1).gather(1, target.unsqueeze(1)).squeeze(1);
  const auto sum_s = s.sum();
  const auto ref = (s * nll).sum() / sum_s + w.pow(2).sum() / (2 * C * sum_s);
  ref.backward();

  const int before = at::get_num_threads();
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    train::LinearObjective objective(x, y, class_weights, features, classes, C);
    torch::Tensor grad_table, grad_bias;
    const double f = objective.evaluate(table, bias, grad_table, grad_bias);
    EXPECT_NEAR(f, ref.item<double>(), 1e-5) << threads << " threads";
    EXPECT_TRUE(torch::allclose(grad_table.to(torch::kFloat64), w.grad(), 1e-4, 1e-6)) << threads << " threads";
    EXPECT_TRUE(torch::allclose(grad_bias.to(torch::kFloat64), b.grad(), 1e-4, 1e-6)) << threads << " threads";
  }
  at::set_num_threads(before);
}

// The fused L-BFGS takes the steps torch's LBFGS takes (same history, line search and stopping
// tests), up to float rounding in its sums: over four calls of ten iterations on the golden
// problem, the same evaluations while the objective falls, the same objective, and parameters
// within rounding. (Measured: the objectives after each call agreed to 5e-6 relative, 0.588468
// against 0.588471 after the first. From the third call on both have converged, 0.58703578, and the
// evaluation counts read the stopping test's rounding, torch's own among them: on an AMD Zen 4 CPU
// torch took 39 evaluations by the third call with OpenBLAS's Cooperlake kernels (Kiln's choice
// there) and 35 with its Haswell kernels, the fused solver 35 with either.)
TEST(LbfgsSolver, FusedStepsFollowTorchsLbfgs) {
  const auto c = golden()["cases"][0];
  const int64_t d = c["features"], k = c["classes"];
  const auto data = batch_of(c);
  train::LinearObjective objective(data.x, data.y, std::vector<float>(static_cast<std::size_t>(k), 1.0F), d, k, 1.0);
  // With torch's default history (10 pairs) and with 3, which the 40 iterations cycle through.
  for (const int64_t history : {10, 3}) {
  SCOPED_TRACE("history " + std::to_string(history));
  auto run = [&](bool fused, std::vector<int64_t>* evals, std::vector<double>* losses) {
    torch::manual_seed(3);
    auto table = (torch::rand({d, k}) - 0.5).set_requires_grad(true);
    auto bias = torch::zeros({k}).set_requires_grad(true);
    const auto options =
        torch::optim::LBFGSOptions(1.0).max_iter(10).tolerance_grad(0).tolerance_change(1e-9).history_size(history).line_search_fn(
            "strong_wolfe");
    std::unique_ptr<torch::optim::Optimizer> opt;
    if (fused) {
      opt = std::make_unique<train::FusedLbfgs>(std::vector<torch::Tensor>{table, bias}, options);
    } else {
      opt = std::make_unique<torch::optim::LBFGS>(std::vector<torch::Tensor>{table, bias}, options);
    }
    torch::Tensor gt, gb;
    int64_t count = 0;
    for (int call = 0; call < 4; ++call) {
      torch::NoGradGuard no_grad;
      opt->step([&] {
        ++count;
        const double f = objective.evaluate(table, bias, gt, gb);
        table.mutable_grad() = gt;
        bias.mutable_grad() = gb;
        return torch::tensor(f, torch::kFloat64);
      });
      evals->push_back(count);
      losses->push_back(objective.evaluate(table, bias, gt, gb));
    }
    return std::make_pair(table.detach().clone(), bias.detach().clone());
  };
  std::vector<int64_t> e_torch, e_fused;
  std::vector<double> l_torch, l_fused;
  const auto [t_torch, b_torch] = run(false, &e_torch, &l_torch);
  const auto [t_fused, b_fused] = run(true, &e_fused, &l_fused);
  // The counts agree while the objective still falls, except that the fused solver does not
  // evaluate again where its previous call ended (torch does, at the start of every call); by the
  // third call both have converged, and their stopping tests (a change below 1e-9) read rounding.
  EXPECT_EQ(e_torch[0], e_fused[0]);
  EXPECT_EQ(e_torch[1] - 1, e_fused[1]);
  for (std::size_t i = 0; i < l_torch.size(); ++i) EXPECT_NEAR(l_torch[i], l_fused[i], 1e-5 * std::abs(l_torch[i])) << "call " << i;
  EXPECT_LT((t_torch - t_fused).abs().max().item<double>(), 1e-3 * t_torch.abs().max().item<double>());
  EXPECT_LT((b_torch - b_fused).abs().max().item<double>(), 1e-3 * (1 + b_torch.abs().max().item<double>()));
  }
}

// A call starts from the previous call's last evaluation only when the parameters are still there,
// bit for bit: moved by the caller in between, they are evaluated again.
TEST(LbfgsSolver, AFusedCallEvaluatesAgainWhenTheParametersMoved) {
  const auto c = golden()["cases"][0];
  const int64_t d = c["features"], k = c["classes"];
  const auto data = batch_of(c);
  train::LinearObjective objective(data.x, data.y, std::vector<float>(static_cast<std::size_t>(k), 1.0F), d, k, 1.0);
  auto count_second_call = [&](bool move) {
    torch::manual_seed(3);
    auto table = (torch::rand({d, k}) - 0.5).set_requires_grad(true);
    auto bias = torch::zeros({k}).set_requires_grad(true);
    train::FusedLbfgs opt({table, bias}, torch::optim::LBFGSOptions(1.0).max_iter(3).tolerance_grad(0).tolerance_change(0).line_search_fn("strong_wolfe"));
    int64_t count = 0;
    torch::Tensor gt, gb;
    auto closure = [&] {
      ++count;
      const double f = objective.evaluate(table, bias, gt, gb);
      table.mutable_grad() = gt;
      bias.mutable_grad() = gb;
      return torch::tensor(f, torch::kFloat64);
    };
    torch::NoGradGuard no_grad;
    (void)opt.step(closure);
    if (move) table[0][0].add_(1e-3);
    torch::Tensor g1, g2;
    const double start = objective.evaluate(table, bias, g1, g2);
    count = 0;
    // The call's returned loss is the objective where it started, evaluated or not.
    EXPECT_EQ(opt.step(closure).item<double>(), start) << (move ? "moved" : "in place");
    return count;
  };
  const int64_t stayed = count_second_call(false), moved = count_second_call(true);
  EXPECT_GE(stayed, 1);  // its line searches
  EXPECT_EQ(moved, stayed + 1);
}
