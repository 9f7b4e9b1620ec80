// Row-sparse gradients: the optimizers' lazy update and the clip on sparse gradients, checked
// against torch's own dense AdamW / SGD (which the golden tests pin to python3-torch).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kiln/nn/model.h"
#include "nn/nn_test_util.h"
#include "kiln/train/optimizer.h"

namespace kiln::train {
namespace {

// A sparse gradient for a [rows, cols] table that lists `rows` (duplicates allowed) with `values`.
torch::Tensor sparse_grad(const std::vector<int64_t>& rows, const torch::Tensor& values, int64_t n, int64_t cols) {
  auto idx = torch::tensor(rows, torch::kInt64).unsqueeze(0);
  return torch::sparse_coo_tensor(idx, values, {n, cols});
}

OptimizerOptions adamw(double wd) {
  OptimizerOptions o;
  o.lr = 0.05;
  o.weight_decay = wd;
  return o;
}

OptimizerOptions sgd(double momentum, bool nesterov, double wd) {
  OptimizerOptions o;
  o.kind = "sgd";
  o.lr = 0.1;
  o.momentum = momentum;
  o.nesterov = nesterov;
  o.weight_decay = wd;
  return o;
}

// When every row has a gradient every step, the lazy update is the dense update.
void expect_matches_dense_when_all_rows_touched(const OptimizerOptions& o) {
  torch::manual_seed(3);
  const auto init = torch::randn({6, 3}, torch::kFloat64);
  auto dense = init.clone().requires_grad_(true);
  auto sparse = init.clone().requires_grad_(true);
  auto opt_dense = make_optimizer({dense}, o);
  auto opt_sparse = make_optimizer({sparse}, o);
  for (int step = 0; step < 7; ++step) {
    const auto g = torch::randn({6, 3}, torch::kFloat64);
    dense.mutable_grad() = g.clone();
    // Rows out of order and one row split over two entries: the optimizer must coalesce.
    std::vector<int64_t> rows = {5, 0, 3, 1, 4, 2, 3};
    auto values = torch::stack({g[5], g[0], g[3] * 0.25, g[1], g[4], g[2], g[3] * 0.75});
    sparse.mutable_grad() = sparse_grad(rows, values, 6, 3);
    opt_dense->step();
    opt_sparse->step();
  }
  EXPECT_LE((dense - sparse).abs().max().item<double>(), 1e-12) << o.kind;
}

TEST(RowSparseOptimizer, AdamWEqualsDenseWhenEveryRowIsTouched) {
  expect_matches_dense_when_all_rows_touched(adamw(0.0));
  expect_matches_dense_when_all_rows_touched(adamw(0.1));
}

TEST(RowSparseOptimizer, SgdEqualsDenseWhenEveryRowIsTouched) {
  expect_matches_dense_when_all_rows_touched(sgd(0.0, false, 0.0));
  expect_matches_dense_when_all_rows_touched(sgd(0.9, false, 0.01));
  expect_matches_dense_when_all_rows_touched(sgd(0.9, true, 0.0));
}

TEST(RowSparseOptimizer, UntouchedRowsKeepWeightsAndMoments) {
  for (const auto& o : {adamw(0.1), sgd(0.9, false, 0.1)}) {
    torch::manual_seed(4);
    auto w = torch::randn({5, 2}, torch::kFloat64).requires_grad_(true);
    const auto before = w.detach().clone();
    auto opt = make_optimizer({w}, o);
    w.mutable_grad() = sparse_grad({1, 3}, torch::ones({2, 2}, torch::kFloat64), 5, 2);
    opt->step();
    const auto after1 = w.detach().clone();
    for (int64_t r : {0, 2, 4}) EXPECT_TRUE(torch::equal(after1[r], before[r])) << o.kind << " row " << r;
    for (int64_t r : {1, 3}) EXPECT_FALSE(torch::equal(after1[r], before[r])) << o.kind << " row " << r;

    // A later step touching only row 0 leaves rows 1 and 3 (and their moments) alone.
    w.mutable_grad() = sparse_grad({0}, torch::ones({1, 2}, torch::kFloat64), 5, 2);
    opt->step();
    const auto after2 = w.detach().clone();
    for (int64_t r : {1, 2, 3, 4}) EXPECT_TRUE(torch::equal(after2[r], after1[r])) << o.kind << " row " << r;
    EXPECT_FALSE(torch::equal(after2[0], after1[0])) << o.kind;
  }
}

TEST(RowSparseOptimizer, MixesDenseAndSparseParameters) {
  torch::manual_seed(5);
  auto table = torch::randn({4, 2}, torch::kFloat64).requires_grad_(true);
  auto bias = torch::randn({2}, torch::kFloat64).requires_grad_(true);
  auto bias_ref = bias.detach().clone().requires_grad_(true);
  auto opt = make_optimizer({table, bias}, adamw(0.0));
  auto ref = make_optimizer({bias_ref}, adamw(0.0));
  for (int step = 0; step < 3; ++step) {
    const auto gb = torch::randn({2}, torch::kFloat64);
    bias.mutable_grad() = gb.clone();
    bias_ref.mutable_grad() = gb.clone();
    table.mutable_grad() = sparse_grad({2}, torch::randn({1, 2}, torch::kFloat64), 4, 2);
    opt->step();
    ref->step();
  }
  EXPECT_TRUE(torch::equal(bias.detach(), bias_ref.detach()));
  EXPECT_TRUE(table.grad().is_sparse()) << "the step must leave the sparse gradient in place";
}

TEST(RowSparseOptimizer, ClipMeasuresAndScalesSparseGradientsAsDense) {
  const auto values = torch::tensor({{3.0, 0.0}, {1.0, 2.0}, {1.0, 2.0}}, torch::kFloat64);
  auto sparse = torch::zeros({4, 2}, torch::kFloat64).requires_grad_(true);
  auto dense = torch::zeros({4, 2}, torch::kFloat64).requires_grad_(true);
  sparse.mutable_grad() = sparse_grad({0, 2, 2}, values, 4, 2);  // row 2 twice: sums to (2, 4)
  dense.mutable_grad() = sparse.grad().to_dense();
  std::vector<double> per_param;
  const double ns = clip_grad_norm({sparse}, 1.0, &per_param);
  const double nd = clip_grad_norm({dense}, 1.0);
  EXPECT_NEAR(ns, std::sqrt(9.0 + 4.0 + 16.0), 1e-12);
  EXPECT_NEAR(ns, nd, 1e-12);
  ASSERT_EQ(per_param.size(), 1u);
  EXPECT_NEAR(per_param[0], ns, 1e-12);
  EXPECT_LE((sparse.grad().to_dense() - dense.grad()).abs().max().item<double>(), 1e-15);
}

TEST(RowSparseOptimizer, ClearGradientsZeroesDenseAndDropsSparse) {
  auto a = torch::zeros({3}, torch::requires_grad());
  auto b = torch::zeros({3, 2}, torch::requires_grad());
  a.mutable_grad() = torch::ones({3});
  b.mutable_grad() = sparse_grad({1}, torch::ones({1, 2}), 3, 2);
  clear_gradients({a, b});
  ASSERT_TRUE(a.grad().defined());
  EXPECT_EQ(a.grad().abs().sum().item<float>(), 0.0f);
  EXPECT_FALSE(b.grad().defined());
}

TEST(RowSparseOptimizer, EmbeddingBagModelsProduceSparseGradientsOnRequest) {
  nn::ModelSpec spec;
  spec.family = "linear";
  auto model = nn::make_model(spec, nn::bag_spec(50), 3);
  nn::Batch batch(2);
  batch.set(nn::kBagIndices, torch::tensor({1, 7, 7, 30}, torch::kInt64));
  batch.set(nn::kBagOffsets, torch::tensor({0, 2}, torch::kInt64));
  batch.set(nn::kBagWeights, torch::tensor({0.5f, 1.0f, 2.0f, 1.0f}));
  for (bool on : {false, true}) {
    model->set_sparse_gradients(on);
    model->zero_grad();
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
    model->forward(batch).sum().backward();
    const auto g = model->named_parameters()["embedding.weight"].grad();
    ASSERT_TRUE(g.defined());
    EXPECT_EQ(g.is_sparse(), on);
    // The same gradient either way: rows 1, 7 and 30 only.
    const auto d = on ? g.to_dense() : g;
    EXPECT_EQ(d.abs().sum(1).nonzero().size(0), 3);
  }
}

TEST(RowSparseOptimizer, FusedAdamWMatchesTorchOpsOnFloat32) {
  // The fused CPU kernel against torch's own AdamW on the same float32 dense problem.
  torch::manual_seed(8);
  const auto init = torch::randn({5, 7});
  auto fused = init.clone().requires_grad_(true);
  auto reference = init.clone().requires_grad_(true);
  auto opt = make_optimizer({fused}, adamw(0.1));
  torch::optim::AdamW ref({reference}, torch::optim::AdamWOptions(0.05).weight_decay(0.1));
  for (int step = 0; step < 5; ++step) {
    const auto g = torch::randn({5, 7});
    fused.mutable_grad() = g.clone();
    reference.mutable_grad() = g.clone();
    opt->step();
    ref.step();
  }
  EXPECT_LE((fused - reference).abs().max().item<float>(), 1e-6f);
}

TEST(RowSparseOptimizer, SortedRowGradientsNeedNoCoalesce) {
  // A row gradient with strictly increasing rows but no coalesced flag (as AccumulateGrad hands
  // over the embedding's) is used as it is.
  auto w = torch::zeros({4, 2}, torch::kFloat64).requires_grad_(true);
  auto values = torch::tensor({{3.0, 4.0}, {0.0, 1.0}}, torch::kFloat64);
  auto g = at::_sparse_coo_tensor_unsafe(torch::tensor({{1, 3}}, torch::kInt64), values, {4, 2});
  ASSERT_FALSE(g.is_coalesced());
  w.mutable_grad() = g;
  std::vector<double> per_param;
  EXPECT_NEAR(clip_grad_norm({w}, 100.0, &per_param), std::sqrt(26.0), 1e-12);
  EXPECT_TRUE(w.grad().is_coalesced());
  EXPECT_TRUE(torch::equal(w.grad()._values(), values));
}

}  // namespace
}  // namespace kiln::train
