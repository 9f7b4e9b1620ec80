// Every family learns a separable sparse problem, and copying parameters reproduces outputs.
#include <gtest/gtest.h>

#include "nn_test_util.h"

namespace kiln::nn {
namespace {

using testing::make_batch;

double train_accuracy(const ModelSpec& spec, double lr) {
  torch::manual_seed(7);
  const auto problem = testing::synthetic_problem(4, 60, 11);
  auto model = make_model(spec, problem.input_dim, problem.num_classes);
  const auto batch = make_batch(problem.rows);
  const auto labels = torch::tensor(problem.labels, torch::kInt64);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(lr));
  model->train();
  for (int step = 0; step < 200; ++step) {
    optimizer.zero_grad();
    const auto loss = torch::nn::functional::cross_entropy(model->forward(batch), labels);
    loss.backward();
    optimizer.step();
  }
  model->eval();
  torch::InferenceMode guard;
  const auto predicted = model->forward(batch).argmax(1);
  return predicted.eq(labels).to(torch::kFloat64).mean().item<double>();
}

ModelSpec spec_of(const std::string& family, const nlohmann::json& params) {
  ModelSpec spec;
  spec.family = family;
  spec.params = params;
  return spec;
}

TEST(NnModels, LinearLearnsSeparableProblem) {
  EXPECT_GT(train_accuracy(spec_of("linear", {}), 0.01), 0.95);
}

TEST(NnModels, MlpLearnsSeparableProblem) {
  EXPECT_GT(train_accuracy(spec_of("mlp", {{"hidden", {32}}}), 0.01), 0.95);
  EXPECT_GT(train_accuracy(spec_of("mlp", {{"hidden", {32, 32}}, {"residual", true}, {"layer_norm", true}}), 0.01), 0.95);
}

TEST(NnModels, EmbedBagLearnsSeparableProblem) {
  EXPECT_GT(train_accuracy(spec_of("embedbag", {}), 0.01), 0.95);
  EXPECT_GT(train_accuracy(spec_of("embedbag", {{"init", "fasttext"}}), 0.01), 0.95);
  EXPECT_GT(train_accuracy(spec_of("embedbag", {{"hidden", 16}, {"pooling", "sum"}}), 0.01), 0.95);
}

TEST(NnModels, CopiedParametersGiveEqualOutputs) {
  const auto batch = make_batch({{{1, 1.0f}, {4, 0.5f}}, {}, {{29, 2.0f}, {0, 1.0f}}});
  for (const auto& spec : {spec_of("linear", {}), spec_of("mlp", {{"hidden", {16, 16}}, {"layer_norm", true}}),
                           spec_of("embedbag", {{"hidden", 8}, {"init", "xavier"}})}) {
    torch::manual_seed(1);
    auto source = make_model(spec, 30, 3);
    torch::manual_seed(2);
    auto target = make_model(spec, 30, 3);
    source->eval();
    target->eval();
    ASSERT_FALSE(torch::allclose(source->forward(batch), target->forward(batch))) << spec.family;

    const auto source_params = source->named_parameters();
    auto target_params = target->named_parameters();
    ASSERT_EQ(source_params.size(), target_params.size()) << spec.family;
    {
      torch::NoGradGuard no_grad;
      for (const auto& p : source_params) {
        ASSERT_TRUE(target_params.contains(p.key())) << spec.family << " " << p.key();
        target_params[p.key()].copy_(p.value());
      }
    }
    EXPECT_TRUE(torch::equal(source->forward(batch), target->forward(batch))) << spec.family;
  }
}

}  // namespace
}  // namespace kiln::nn

namespace kiln::nn {
namespace {

TEST(NnModels, CudaForwardMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (or a CPU-only LibTorch): GPU path not tested";
  const auto batch = testing::make_batch({{{1, 1.0f}, {4, 0.5f}}, {}, {{29, 2.0f}, {0, 1.0f}}});
  for (const char* family : {"linear", "mlp", "embedbag"}) {
    torch::manual_seed(3);
    ModelSpec spec;
    spec.family = family;
    auto model = make_model(spec, 30, 3);
    model->eval();
    const auto cpu = model->forward(batch);
    model->to(torch::kCUDA);
    const auto gpu = model->forward(batch.to(torch::kCUDA)).cpu();
    EXPECT_TRUE(torch::allclose(cpu, gpu, 1e-4, 1e-5)) << family;
  }
}

}  // namespace
}  // namespace kiln::nn
