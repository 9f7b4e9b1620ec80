#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "init.h"
#include "nn_test_util.h"

namespace kiln::nn {
namespace {

using testing::dense;
using testing::expect_config_error;
using testing::make_batch;
using testing::param;
using testing::Row;

std::shared_ptr<Model> embedbag(const nlohmann::json& params, int64_t input_dim = 20,
                                         int64_t num_classes = 3) {
  ModelSpec spec;
  spec.family = "embedbag";
  spec.params = params;
  return make_model(spec, input_dim, num_classes);
}

const std::vector<Row> kRows = {{{1, 1.0f}, {4, 3.0f}}, {}, {{19, 2.0f}, {0, 1.0f}, {3, 1.0f}}, {{5, 0.0f}}};

TEST(NnModels, EmbedBagOutputShapeAndInit) {
  torch::manual_seed(0);
  auto model = embedbag({});
  EXPECT_EQ(model->forward(make_batch(kRows)).sizes(), (torch::IntArrayRef{4, 3}));
  const auto emb = param(*model, "embedding.weight");
  EXPECT_EQ(emb.sizes(), (torch::IntArrayRef{20, 100}));
  EXPECT_LE(emb.abs().max().item<float>(), 1.0f / 100.0f);
  EXPECT_GT(emb.abs().max().item<float>(), 0.5f / 100.0f);
  const auto out = param(*model, "output.weight");
  EXPECT_GT(out.abs().max().item<float>(), 0.0f);
  EXPECT_LE(out.abs().max().item<float>(), std::sqrt(6.0f / 103.0f));
  EXPECT_EQ(param(*model, "output.bias").abs().max().item<float>(), 0.0f);
  EXPECT_FALSE(model->named_parameters().contains("hidden.weight"));

  auto fasttext = embedbag({{"init", "fasttext"}, {"hidden", 8}});
  EXPECT_EQ(param(*fasttext, "output.weight").abs().max().item<float>(), 0.0f);
  EXPECT_EQ(param(*fasttext, "hidden.weight").sizes(), (torch::IntArrayRef{8, 100}));
  EXPECT_GT(param(*fasttext, "hidden.weight").abs().max().item<float>(), 0.0f);
}

// An embedbag model whose output layer is the identity (dim == num_classes == 4, bias 0), so its
// logits are the pooled features.
std::shared_ptr<Model> readout_model(const nlohmann::json& params) {
  auto p = params;
  p["dim"] = 4;
  p["init"] = "xavier";
  auto model = embedbag(p, 20, 4);
  torch::NoGradGuard no_grad;
  param(*model, "output.weight").copy_(torch::eye(4));
  param(*model, "output.bias").zero_();
  return model;
}

TEST(NnModels, FastUniformInitIsSeededBoundedAndTheSameAtAnyThreadCount) {
  // init_uniform_fast (the embedbag table): values in [-b, b), mean near 0 and variance near
  // b^2/3 (uniform), the same for the same seed at 1 and 2 threads, different for another seed.
  const double b = 0.25;
  auto fill = [&](uint64_t seed, int threads) {
    const int before = at::get_num_threads();
    at::set_num_threads(threads);
    torch::manual_seed(seed);
    auto t = torch::empty({1 << 12, 64});
    init_uniform_fast(t, b);
    at::set_num_threads(before);
    return t;
  };
  const auto a = fill(7, 1), a2 = fill(7, 2), c = fill(8, 2);
  EXPECT_TRUE(torch::equal(a, a2));
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_GE(a.min().item<double>(), -b);
  EXPECT_LT(a.max().item<double>(), b);
  EXPECT_NEAR(a.mean().item<double>(), 0.0, 0.005);
  EXPECT_NEAR(a.var().item<double>(), b * b / 3.0, 0.01 * b * b);
  // Neighbouring entries are not correlated (the hash, not a counter, decides each value).
  const auto x = a.flatten();
  const double corr = ((x.narrow(0, 0, x.numel() - 1) * x.narrow(0, 1, x.numel() - 1)).mean() / x.var()).item<double>();
  EXPECT_LT(std::abs(corr), 0.02);
}

TEST(NnModels, EmbedBagMeanPoolingIsWeightedMeanOfRows) {
  torch::manual_seed(1);
  auto model = readout_model({});
  const auto emb = param(*model, "embedding.weight");

  const auto x = dense(kRows, 20);
  auto totals = x.sum(1, true);
  totals = torch::where(totals == 0, torch::ones_like(totals), totals);
  EXPECT_TRUE(torch::allclose(model->forward(make_batch(kRows)), x.mm(emb) / totals, 1e-5, 1e-7));

  // Unweighted: the plain mean of the rows' embeddings.
  const auto row0_mean = (emb[1] + emb[4]) / 2;
  const auto row2_mean = (emb[19] + emb[0] + emb[3]) / 3;
  const auto out = model->forward(make_batch(kRows, false));
  EXPECT_TRUE(torch::allclose(out[0], row0_mean, 1e-5, 1e-7));
  EXPECT_TRUE(torch::allclose(out[2], row2_mean, 1e-5, 1e-7));
  EXPECT_TRUE(torch::allclose(out[3], emb[5], 1e-5, 1e-7));
}

TEST(NnModels, EmbedBagEmptyAndZeroWeightRowsAreZero) {
  torch::manual_seed(2);
  auto model = readout_model({});
  const auto out = model->forward(make_batch(kRows));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  EXPECT_EQ(out[1].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(out[3].abs().sum().item<float>(), 0.0f);
  const auto all_empty = model->forward(make_batch({{}, {}, {}}));
  EXPECT_EQ(all_empty.sizes(), (torch::IntArrayRef{3, 4}));
  EXPECT_EQ(all_empty.abs().sum().item<float>(), 0.0f);

  // Gradients stay finite through empty rows.
  model->train();
  auto loss = model->forward(make_batch(kRows)).sum();
  loss.backward();
  EXPECT_TRUE(torch::isfinite(param(*model, "embedding.weight").grad()).all().item<bool>());
}

TEST(NnModels, EmbedBagSumPooling) {
  torch::manual_seed(3);
  auto model = readout_model({{"pooling", "sum"}});
  const auto emb = param(*model, "embedding.weight");
  EXPECT_TRUE(torch::allclose(model->forward(make_batch(kRows)), dense(kRows, 20).mm(emb), 1e-5, 1e-7));
}

TEST(NnModels, EmbedBagHiddenLayer) {
  torch::manual_seed(4);
  auto model = embedbag({{"hidden", 8}, {"activation", "tanh"}, {"dropout", 0.1}, {"init", "xavier"}});
  model->eval();
  const auto emb = param(*model, "embedding.weight");
  const auto x = dense(kRows, 20);
  auto totals = x.sum(1, true);
  totals = torch::where(totals == 0, torch::ones_like(totals), totals);
  const auto h = torch::tanh((x.mm(emb) / totals).mm(param(*model, "hidden.weight").t()) + param(*model, "hidden.bias"));
  const auto expected = h.mm(param(*model, "output.weight").t()) + param(*model, "output.bias");
  EXPECT_TRUE(torch::allclose(model->forward(make_batch(kRows)), expected, 1e-5, 1e-6));
}

TEST(NnModels, EmbedBagRejectsBadDim) {
  expect_config_error([] { (void)embedbag({{"dim", 0}}); }, {"model.params.dim must be >= 1, got 0"});
  expect_config_error([] { (void)embedbag({{"dim", "100"}}); }, {"model.params.dim must be an integer, got \"100\""});
}

TEST(NnModels, EmbedBagRejectsNegativeHidden) {
  expect_config_error([] { (void)embedbag({{"hidden", -1}}); }, {"model.params.hidden must be >= 0, got -1"});
}

TEST(NnModels, EmbedBagRejectsBadPooling) {
  expect_config_error([] { (void)embedbag({{"pooling", "max"}}); },
                      {"model.params.pooling must be one of \"mean\", \"sum\", \"sqrtn\", got \"max\""});
}

TEST(NnModels, EmbedBagRejectsBadDropout) {
  expect_config_error([] { (void)embedbag({{"dropout", 1.0}}); }, {"model.params.dropout must be in [0, 1), got 1.0"});
}

TEST(NnModels, EmbedBagRejectsBadActivationAndInit) {
  expect_config_error([] { (void)embedbag({{"activation", "sigmoid"}}); },
                      {"model.params.activation must be one of \"relu\", \"gelu\", \"tanh\", got \"sigmoid\""});
  expect_config_error([] { (void)embedbag({{"init", "kaiming"}}); },
                      {"model.params.init must be one of \"xavier\", \"fasttext\", got \"kaiming\""});
}

TEST(NnModels, EmbedBagRejectsUnknownParam) {
  expect_config_error([] { (void)embedbag({{"dims", 10}}); },
                      {"model.params.dims is not a parameter of model family \"embedbag\"",
                       "valid parameters: activation, dim, dropout, hidden, init, pooling", "did you mean \"dim\""});
}

}  // namespace
}  // namespace kiln::nn
