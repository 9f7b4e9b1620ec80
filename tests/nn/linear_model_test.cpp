#include <gtest/gtest.h>

#include "nn_test_util.h"

namespace kiln::nn {
namespace {

using testing::dense;
using testing::expect_config_error;
using testing::make_batch;
using testing::param;
using testing::Row;

std::shared_ptr<Model> linear(const nlohmann::json& params, int64_t input_dim, int64_t num_classes) {
  ModelSpec spec;
  spec.family = "linear";
  spec.params = params;
  return make_model(spec, input_dim, num_classes);
}

TEST(NnModels, LinearOutputShape) {
  torch::manual_seed(0);
  auto model = linear({}, 20, 3);
  EXPECT_EQ(model->forward(make_batch({{{1, 1.0f}, {4, 0.5f}}, {{19, 2.0f}}, {}})).sizes(), (torch::IntArrayRef{3, 3}));
}

TEST(NnModels, LinearEqualsDenseReference) {
  torch::manual_seed(1);
  const int64_t input_dim = 12, classes = 4;
  auto model = linear({{"init", "normal"}}, input_dim, classes);
  {
    torch::NoGradGuard no_grad;
    param(*model, "bias").copy_(torch::tensor({0.1f, -0.2f, 0.3f, 0.05f}));
  }
  const std::vector<Row> rows = {{{0, 1.0f}, {3, 0.5f}, {11, -2.0f}}, {}, {{5, 0.25f}, {5, 0.75f}}, {{7, 3.0f}}};
  const auto weight = param(*model, "embedding.weight");
  ASSERT_EQ(weight.sizes(), (torch::IntArrayRef{input_dim, classes}));

  const auto expected = dense(rows, input_dim).mm(weight) + param(*model, "bias");
  EXPECT_TRUE(torch::allclose(model->forward(make_batch(rows)), expected, 1e-5, 1e-6));

  const auto expected_unweighted = dense(rows, input_dim, false).mm(weight) + param(*model, "bias");
  EXPECT_TRUE(torch::allclose(model->forward(make_batch(rows, false)), expected_unweighted, 1e-5, 1e-6));
}

TEST(NnModels, LinearEmptyRowsGiveBias) {
  torch::manual_seed(2);
  auto model = linear({}, 8, 3);
  {
    torch::NoGradGuard no_grad;
    param(*model, "bias").copy_(torch::tensor({1.0f, 2.0f, 3.0f}));
  }
  const auto logits = model->forward(make_batch({{}, {}}));
  EXPECT_TRUE(torch::allclose(logits, torch::tensor({1.0f, 2.0f, 3.0f}).expand({2, 3})));
  EXPECT_EQ(model->forward(make_batch({})).sizes(), (torch::IntArrayRef{0, 3}));
}

TEST(NnModels, LinearInitSchemes) {
  torch::manual_seed(3);
  EXPECT_EQ(param(*linear({{"init", "zeros"}}, 50, 5), "embedding.weight").abs().max().item<float>(), 0.0f);
  const float xavier_bound = std::sqrt(6.0f / 55.0f);
  const auto xavier = param(*linear({{"init", "xavier"}}, 50, 5), "embedding.weight");
  EXPECT_LE(xavier.abs().max().item<float>(), xavier_bound);
  EXPECT_GT(xavier.abs().max().item<float>(), 0.5f * xavier_bound);
  const auto kaiming = param(*linear({{"init", "kaiming"}}, 50, 5), "embedding.weight");
  EXPECT_LE(kaiming.abs().max().item<float>(), std::sqrt(6.0f / 50.0f));
  const auto normal = param(*linear({{"init", "normal"}}, 500, 5), "embedding.weight");
  EXPECT_NEAR(normal.std().item<float>(), 0.02f, 0.003f);
  EXPECT_EQ(param(*linear({}, 50, 5), "bias").abs().max().item<float>(), 0.0f);
}

TEST(NnModels, LinearRejectsBadInit) {
  expect_config_error([] { (void)linear({{"init", "uniform"}}, 5, 2); },
                      {"model.params.init must be one of \"xavier\", \"kaiming\", \"normal\", \"zeros\"",
                       "got \"uniform\""});
  expect_config_error([] { (void)linear({{"init", 1}}, 5, 2); }, {"model.params.init must be one of", "got 1"});
}

TEST(NnModels, LinearRejectsUnknownParam) {
  expect_config_error([] { (void)linear({{"hidden", {3}}}, 5, 2); },
                      {"model.params.hidden is not a parameter of model family \"linear\"", "valid parameters: init"});
}

TEST(NnModels, ForwardRejectsMalformedBatch) {
  torch::manual_seed(4);
  auto model = linear({}, 10, 2);
  auto out_of_range = make_batch({{{10, 1.0f}}});
  EXPECT_THROW((void)model->forward(out_of_range), DataError);
  try {
    (void)model->forward(out_of_range);
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("value 10 outside [0, 10)"), std::string::npos) << e.what();
  }
  auto negative = make_batch({{{-1, 1.0f}}});
  EXPECT_THROW((void)model->forward(negative), DataError);

  auto bad_offsets = make_batch({{{1, 1.0f}}, {{2, 1.0f}}});
  bad_offsets.set(kBagOffsets, torch::tensor({1, 2}, torch::kInt64));
  EXPECT_THROW((void)model->forward(bad_offsets), DataError);

  auto decreasing = make_batch({{{1, 1.0f}}, {{2, 1.0f}}, {{3, 1.0f}}});
  decreasing.set(kBagOffsets, torch::tensor({0, 2, 1}, torch::kInt64));
  EXPECT_THROW((void)model->forward(decreasing), DataError);

  auto int32 = make_batch({{{1, 1.0f}}});
  int32.set(kBagIndices, int32.at(kBagIndices).to(torch::kInt32));
  EXPECT_THROW((void)model->forward(int32), DataError);

  auto short_weights = make_batch({{{1, 1.0f}, {2, 1.0f}}});
  short_weights.set(kBagWeights, torch::ones({1}));
  EXPECT_THROW((void)model->forward(short_weights), DataError);

  Batch no_indices(1);
  no_indices.set(kBagOffsets, torch::zeros({1}, torch::kInt64));
  try {
    (void)model->forward(no_indices);
    ADD_FAILURE() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("the batch has no tensor 'bag_indices' (it holds: bag_offsets)"),
              std::string::npos)
        << e.what();
  }
}

TEST(NnModels, BatchToKeepsValuesAndMissingWeights) {
  const auto batch = make_batch({{{1, 0.5f}}, {{2, 2.0f}}});
  const auto moved = batch.to(torch::kCPU);
  EXPECT_TRUE(torch::equal(moved.at(kBagIndices), batch.at(kBagIndices)));
  EXPECT_TRUE(torch::equal(moved.at(kBagOffsets), batch.at(kBagOffsets)));
  EXPECT_TRUE(torch::equal(moved.at(kBagWeights), batch.at(kBagWeights)));
  EXPECT_EQ(moved.size(), 2);
  EXPECT_FALSE(make_batch({{{1, 0.5f}}}, false).to(torch::kCPU).has(kBagWeights));
}

}  // namespace
}  // namespace kiln::nn
