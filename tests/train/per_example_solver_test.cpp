// The per-example SGD solver (fastText's recipe) against the generic trainer: with batch size 1,
// plain SGD and no class weights they run the same arithmetic, so the weights must agree to float
// rounding; and the options it cannot honour are refused by name.
#include <gtest/gtest.h>

#include <random>

#include "kiln/core/error.h"
#include "kiln/nn/model.h"
#include "kiln/train/trainer.h"
#include "nn/nn_test_util.h"

using namespace kiln;

namespace {

train::LabeledBatch problem(int n, uint64_t seed, int64_t cols, int64_t classes) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> indices, offsets;
  std::vector<float> values;
  std::vector<int64_t> y;
  for (int i = 0; i < n; ++i) {
    const auto c = static_cast<int64_t>(rng() % static_cast<uint64_t>(classes));
    offsets.push_back(static_cast<int64_t>(indices.size()));
    const int k = i % 7 == 0 ? 0 : 1 + static_cast<int>(rng() % 6);  // some empty bags
    std::vector<int64_t> seen;
    for (int j = 0; j < k; ++j) {
      const bool noise = rng() % 4 == 0;
      const int64_t f = noise ? static_cast<int64_t>(rng() % static_cast<uint64_t>(cols)) : c * 5 + static_cast<int64_t>(rng() % 5);
      if (std::find(seen.begin(), seen.end(), f) != seen.end()) continue;
      seen.push_back(f);
      indices.push_back(f);
      values.push_back(1.0F + static_cast<float>(rng() % 3));
    }
    y.push_back(c);
  }
  train::LabeledBatch r;
  r.x = nn::Batch(n);
  r.x.set(nn::kBagIndices, torch::tensor(indices, torch::kInt64));
  r.x.set(nn::kBagOffsets, torch::tensor(offsets, torch::kInt64));
  r.x.set(nn::kBagWeights, torch::tensor(values, torch::kFloat32));
  r.y = y;
  return r;
}

std::shared_ptr<nn::Model> embedbag(int64_t cols, int64_t classes, const nlohmann::json& params) {
  torch::manual_seed(7);
  nn::ModelSpec spec;
  spec.family = "embedbag";
  spec.params = params;
  return nn::make_model(spec, nn::bag_spec(cols), classes);
}

train::TrainerOptions sgd_options(const std::string& solver) {
  train::TrainerOptions o;
  o.solver = solver;
  o.epochs = 3;
  o.batch_size = 1;
  o.optimizer.kind = "sgd";
  o.optimizer.lr = 0.1;
  o.schedule.kind = "linear";
  o.grad_clip = 0;
  o.early_stopping_patience = 0;
  o.calibrate = "none";
  o.sparse_gradients = false;
  return o;
}

}  // namespace

TEST(PerExampleSolver, MatchesTheGenericTrainerStepForStep) {
  for (const char* pooling : {"mean", "sum", "sqrtn"}) {
    const auto data = problem(300, 3, 30, 6);
    const nlohmann::json params = {{"dim", 8}, {"pooling", pooling}, {"init", "xavier"}};
    auto a = embedbag(30, 6, params), b = embedbag(30, 6, params);
    const auto ra = train::train_model(*a, data, nullptr, 6, sgd_options("minibatch"));
    const auto rb = train::train_model(*b, data, nullptr, 6, sgd_options("per_example"));
    ASSERT_EQ(ra.history.size(), rb.history.size());
    for (std::size_t e = 0; e < ra.history.size(); ++e) {
      EXPECT_NEAR(ra.history[e].train_loss, rb.history[e].train_loss, 1e-4) << pooling << " epoch " << e + 1;
    }
    auto pa = a->named_parameters(), pb = b->named_parameters();
    for (const auto& p : pa) {
      const double diff = (p.value() - pb[p.key()]).abs().max().item<double>();
      EXPECT_LT(diff, 1e-4) << pooling << " " << p.key();
    }
  }
}

TEST(PerExampleSolver, ClassWeightsScaleEachExamplesStep) {
  // Every class weighted 2 is the same run as twice the learning rate (the loss is scaled, not
  // renormalised as a mini-batch's weighted mean would be).
  const auto data = problem(200, 5, 30, 6);
  const nlohmann::json params = {{"dim", 8}, {"init", "fasttext"}};
  auto a = embedbag(30, 6, params), b = embedbag(30, 6, params);
  auto oa = sgd_options("per_example");
  oa.loss.class_weight = "explicit";
  oa.loss.class_weights.assign(6, 2.0);
  auto ob = sgd_options("per_example");
  ob.optimizer.lr = 2 * oa.optimizer.lr;
  (void)train::train_model(*a, data, nullptr, 6, oa);
  (void)train::train_model(*b, data, nullptr, 6, ob);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) EXPECT_LT((p.value() - pb[p.key()]).abs().max().item<double>(), 1e-5) << p.key();
}

TEST(PerExampleSolver, OneThreadIsReproducibleAndHogwildLearns) {
  const auto data = problem(4000, 9, 30, 6), val = problem(500, 10, 30, 6);
  const nlohmann::json params = {{"dim", 8}, {"init", "fasttext"}};
  auto a = embedbag(30, 6, params), b = embedbag(30, 6, params), c = embedbag(30, 6, params);
  auto o = sgd_options("per_example");
  const auto one = train::train_model(*a, data, &val, 6, o);
  (void)train::train_model(*b, data, &val, 6, o);
  EXPECT_TRUE(torch::equal(a->named_parameters()["embedding.weight"], b->named_parameters()["embedding.weight"]));
  o.solver_threads = 2;
  const auto two = train::train_model(*c, data, &val, 6, o);
  EXPECT_GT(one.best_val_macro_f1, 0.7);
  EXPECT_GT(two.best_val_macro_f1, one.best_val_macro_f1 - 0.05);
}

TEST(PerExampleSolver, RefusesWhatItCannotDoNamingTheField) {
  const auto data = problem(50, 1, 30, 6);
  auto expect_error = [&](train::TrainerOptions o, const nlohmann::json& params, const std::string& needle) {
    auto m = embedbag(30, 6, params);
    try {
      (void)train::train_model(*m, data, nullptr, 6, o);
      FAIL() << "expected an error containing: " << needle;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const nlohmann::json plain = {{"dim", 8}};
  auto o = sgd_options("per_example");
  o.batch_size = 32;
  expect_error(o, plain, "train.solver per_example needs train.batch_size 1");
  o = sgd_options("per_example");
  o.optimizer.kind = "adamw";
  o.optimizer.weight_decay = 0.0;
  expect_error(o, plain, "needs train.optimizer sgd");
  o = sgd_options("per_example");
  o.grad_clip = 1.0;
  expect_error(o, plain, "needs train.grad_clip 0");
  o = sgd_options("bogus");
  expect_error(o, plain, "train.solver must be minibatch, per_example or lbfgs, got 'bogus'");
  expect_error(sgd_options("per_example"), {{"dim", 8}, {"hidden", 4}}, "use train.solver minibatch");
}
