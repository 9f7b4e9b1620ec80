#include <gtest/gtest.h>

#include "nn_test_util.h"

namespace kiln::nn {
namespace {

using testing::expect_config_error;
using testing::make_batch;
using testing::param;

std::shared_ptr<Model> mlp(const nlohmann::json& params, int64_t input_dim = 30, int64_t num_classes = 3) {
  ModelSpec spec;
  spec.family = "mlp";
  spec.params = params;
  return make_model(spec, input_dim, num_classes);
}

Batch sample_batch() { return make_batch({{{1, 1.0f}, {4, 0.5f}}, {}, {{29, 2.0f}, {0, 1.0f}, {3, 0.1f}}}); }

TEST(NnModels, MlpOutputShapeAndParameterNames) {
  torch::manual_seed(0);
  auto model = mlp({{"hidden", {16, 8}}, {"layer_norm", true}});
  EXPECT_EQ(model->forward(sample_batch()).sizes(), (torch::IntArrayRef{3, 3}));
  const auto params = model->named_parameters();
  for (const char* name : {"embedding.weight", "embedding_bias", "hidden1.weight", "hidden1.bias", "norm0.weight",
                           "norm0.bias", "norm1.weight", "output.weight", "output.bias"}) {
    EXPECT_TRUE(params.contains(name)) << name;
  }
  EXPECT_EQ(param(*model, "embedding.weight").sizes(), (torch::IntArrayRef{30, 16}));
  EXPECT_EQ(param(*model, "hidden1.weight").sizes(), (torch::IntArrayRef{8, 16}));
  EXPECT_EQ(param(*model, "output.weight").sizes(), (torch::IntArrayRef{3, 8}));
  EXPECT_EQ(param(*model, "embedding_bias").abs().max().item<float>(), 0.0f);
  EXPECT_EQ(param(*model, "hidden1.bias").abs().max().item<float>(), 0.0f);
  EXPECT_EQ(param(*model, "output.bias").abs().max().item<float>(), 0.0f);
}

TEST(NnModels, MlpDefaultHasOneHiddenLayerOf256) {
  torch::manual_seed(0);
  auto model = mlp({});
  EXPECT_EQ(param(*model, "embedding.weight").sizes(), (torch::IntArrayRef{30, 256}));
  EXPECT_EQ(param(*model, "output.weight").sizes(), (torch::IntArrayRef{3, 256}));
  EXPECT_FALSE(model->named_parameters().contains("hidden1.weight"));
}

TEST(NnModels, MlpResidualLayerNormForwardBackward) {
  torch::manual_seed(1);
  for (const char* activation : {"relu", "gelu", "tanh"}) {
    auto model = mlp({{"hidden", {16, 16, 16, 8}}, {"residual", true}, {"layer_norm", true}, {"activation", activation}});
    model->train();
    const auto logits = model->forward(sample_batch());
    ASSERT_EQ(logits.sizes(), (torch::IntArrayRef{3, 3}));
    const auto loss = torch::nn::functional::cross_entropy(logits, torch::tensor({0, 1, 2}, torch::kInt64));
    loss.backward();
    const auto grad = param(*model, "embedding.weight").grad();
    ASSERT_TRUE(grad.defined()) << activation;
    EXPECT_GT(grad.abs().sum().item<float>(), 0.0f) << activation;
    EXPECT_TRUE(torch::isfinite(grad).all().item<bool>()) << activation;
    // Rows of features absent from the batch get no gradient.
    EXPECT_EQ(grad[10].abs().sum().item<float>(), 0.0f) << activation;
    for (const auto& p : model->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
    }
  }
}

TEST(NnModels, MlpResidualAddsSkipConnection) {
  torch::manual_seed(2);
  // With the inner layer's weights and bias at zero, relu(0) = 0, so a residual block is the identity
  // and the network equals one without the middle layer.
  auto model = mlp({{"hidden", {8, 8}}, {"residual", true}, {"dropout", 0.0}});
  model->eval();
  {
    torch::NoGradGuard no_grad;
    param(*model, "hidden1.weight").zero_();
  }
  const auto batch = sample_batch();
  const auto emb = param(*model, "embedding.weight");
  const auto h0 = torch::relu(testing::dense({{{1, 1.0f}, {4, 0.5f}}, {}, {{29, 2.0f}, {0, 1.0f}, {3, 0.1f}}}, 30)
                                  .mm(emb) +
                              param(*model, "embedding_bias"));
  const auto expected = h0.mm(param(*model, "output.weight").t()) + param(*model, "output.bias");
  EXPECT_TRUE(torch::allclose(model->forward(batch), expected, 1e-5, 1e-6));
}

TEST(NnModels, MlpDropoutOnlyInTraining) {
  torch::manual_seed(3);
  auto model = mlp({{"hidden", {64}}, {"dropout", 0.5}});
  const auto batch = sample_batch();
  model->eval();
  EXPECT_TRUE(torch::equal(model->forward(batch), model->forward(batch)));
  model->train();
  EXPECT_FALSE(torch::equal(model->forward(batch), model->forward(batch)));
}

TEST(NnModels, MlpRejectsEmptyHidden) {
  expect_config_error([] { (void)mlp({{"hidden", nlohmann::json::array()}}); },
                      {"model.params.hidden must be a non-empty list of integers >= 1, got []"});
}

TEST(NnModels, MlpRejectsHiddenBelowOne) {
  expect_config_error([] { (void)mlp({{"hidden", {64, 0}}}); },
                      {"model.params.hidden must be a non-empty list of integers >= 1", "[64,0]", "element 1 is 0"});
}

TEST(NnModels, MlpRejectsHiddenOfWrongType) {
  expect_config_error([] { (void)mlp({{"hidden", 256}}); }, {"model.params.hidden must be a non-empty list", "got 256"});
  expect_config_error([] { (void)mlp({{"hidden", {"wide"}}}); }, {"model.params.hidden", "element 0 is \"wide\""});
  expect_config_error([] { (void)mlp({{"hidden", {12.5}}}); }, {"model.params.hidden", "element 0 is 12.5"});
}

TEST(NnModels, MlpAcceptsIntegralFloatHidden) {
  torch::manual_seed(0);
  EXPECT_EQ(param(*mlp({{"hidden", {16.0}}}), "embedding.weight").size(1), 16);
}

TEST(NnModels, MlpRejectsDropoutOutOfRange) {
  expect_config_error([] { (void)mlp({{"dropout", 1.5}}); }, {"model.params.dropout must be in [0, 1), got 1.5"});
  expect_config_error([] { (void)mlp({{"dropout", 1}}); }, {"model.params.dropout must be in [0, 1), got 1"});
  expect_config_error([] { (void)mlp({{"dropout", -0.1}}); }, {"model.params.dropout must be in [0, 1), got -0.1"});
}

TEST(NnModels, MlpRejectsDropoutOfWrongType) {
  expect_config_error([] { (void)mlp({{"dropout", "0.2"}}); },
                      {"model.params.dropout must be a number in [0, 1), got \"0.2\""});
}

TEST(NnModels, MlpRejectsUnknownActivation) {
  expect_config_error([] { (void)mlp({{"activation", "relux"}}); },
                      {"model.params.activation must be one of \"relu\", \"gelu\", \"tanh\", got \"relux\"",
                       "did you mean \"relu\""});
}

TEST(NnModels, MlpRejectsNonBooleanFlags) {
  expect_config_error([] { (void)mlp({{"layer_norm", "yes"}}); },
                      {"model.params.layer_norm must be true or false, got \"yes\""});
  expect_config_error([] { (void)mlp({{"residual", 1}}); }, {"model.params.residual must be true or false, got 1"});
}

TEST(NnModels, MlpRejectsBadInit) {
  expect_config_error([] { (void)mlp({{"init", "zeros"}}); },
                      {"model.params.init must be one of \"xavier\", \"kaiming\", \"normal\", got \"zeros\""});
}

TEST(NnModels, MlpRejectsUnknownParam) {
  expect_config_error([] { (void)mlp({{"layernorm", true}}); },
                      {"model.params.layernorm is not a parameter of model family \"mlp\"",
                       "valid parameters: activation, dropout, hidden, init, layer_norm, residual",
                       "did you mean \"layer_norm\""});
}

}  // namespace
}  // namespace kiln::nn
