#include <algorithm>
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "kiln/nn/model.h"
#include "nn_test_util.h"

namespace kiln::nn {
namespace {

using testing::expect_config_error;
using testing::make_batch;

TEST(ModelRegistry, BuiltinFamiliesAreRegisteredAndSorted) {
  const auto families = model_families();
  std::vector<std::string> names;
  for (const auto& f : families) {
    names.push_back(f.name);
    EXPECT_TRUE(f.factory) << f.name;
    EXPECT_FALSE(f.description.empty()) << f.name;
  }
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* builtin : {"bert", "embedbag", "linear", "mlp"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), builtin), names.end()) << builtin;
  }
}

TEST(ModelRegistry, UnknownFamilyListsKnownOnes) {
  expect_config_error(
      [] {
        ModelSpec spec;
        spec.family = "mpl";
        (void)make_model(spec, 10, 2);
      },
      {"model.family \"mpl\" is not a known model family", "bert, cnn, embedbag, ensemble, linear, mlp, multimodal", "did you mean \"mlp\""});
  expect_config_error(
      [] {
        ModelSpec spec;
        spec.family = "transformer";
        (void)resolve_spec(spec);
      },
      {"\"transformer\"", "known families: ", "linear"});
}

TEST(ModelRegistry, ResolveSpecFillsDefaults) {
  ModelSpec spec;
  spec.family = "mlp";
  spec.params = {{"hidden", {64, 64}}};
  const auto resolved = resolve_spec(spec);
  EXPECT_EQ(resolved.family, "mlp");
  EXPECT_EQ(resolved.params,
            (nlohmann::json{{"hidden", {64, 64}},   {"activation", "relu"}, {"dropout", 0.2},
                            {"layer_norm", false}, {"residual", false},    {"init", "xavier"}}));

  ModelSpec linear;
  linear.family = "linear";
  EXPECT_EQ(resolve_spec(linear).params, (nlohmann::json{{"init", "xavier"}}));

  ModelSpec embedbag;
  embedbag.family = "embedbag";
  EXPECT_EQ(resolve_spec(embedbag).params,
            (nlohmann::json{{"dim", 100},           {"pooling", "mean"}, {"hidden", 0},
                            {"activation", "relu"}, {"dropout", 0.0},    {"init", "xavier"}}));
}

TEST(ModelRegistry, ResolveSpecIsIdempotent) {
  ModelSpec spec;
  spec.family = "embedbag";
  spec.params = {{"dim", 32}};
  const auto once = resolve_spec(spec);
  const auto twice = resolve_spec(once);
  EXPECT_EQ(to_json(once), to_json(twice));
}

TEST(ModelRegistry, ResolveSpecValidatesValues) {
  ModelSpec spec;
  spec.family = "mlp";
  spec.params = {{"dropout", 1.5}};
  expect_config_error([&] { (void)resolve_spec(spec); }, {"model.params.dropout must be in [0, 1), got 1.5"});
}

TEST(ModelRegistry, UnknownParamListsValidOnes) {
  ModelSpec spec;
  spec.family = "mlp";
  spec.params = {{"hiden", {32}}};
  expect_config_error([&] { (void)make_model(spec, 10, 2); },
                      {"model.params.hiden is not a parameter of model family \"mlp\"",
                       "valid parameters: activation, dropout, hidden, init, layer_norm, residual",
                       "did you mean \"hidden\""});
}

TEST(ModelRegistry, ParamsMustBeObject) {
  ModelSpec spec;
  spec.family = "linear";
  spec.params = nlohmann::json::array();
  expect_config_error([&] { (void)make_model(spec, 10, 2); }, {"model.params must be an object", "linear"});
}

TEST(ModelRegistry, RejectsBadDimensions) {
  ModelSpec spec;
  spec.family = "linear";
  expect_config_error([&] { (void)make_model(spec, InputSpec{}, 2); },
                      {"model family 'linear' needs the input tensor 'bag_indices' but the preprocessors produce no tensors",
                       "bag-of-features preprocessor"});
  InputSpec no_vocab = bag_spec(5);
  no_vocab.tensors[0].vocab_size = 0;
  expect_config_error([&] { (void)make_model(spec, no_vocab, 2); },
                      {"model family 'linear' needs the number of ids of input 'bag_indices'"});
  expect_config_error([&] { (void)make_model(spec, 5, 0); }, {"num_classes must be >= 1, got 0"});
}

class ConstantModel : public Model {
 public:
  ConstantModel(int64_t num_classes, double value) : Model(num_classes), value_(value) {}
  torch::Tensor embed(const Batch& batch) override { return torch::zeros({batch.size(), 1}); }
  torch::Tensor classify(const torch::Tensor& pooled) override {
    return torch::full({pooled.size(0), num_classes()}, value_);
  }
  int64_t embedding_dim() const override { return 1; }

 private:
  double value_;
};

TEST(ModelRegistry, CustomFamilyIsUsedByMakeModel) {
  ModelFamily family;
  family.name = "test_constant";
  family.description = "constant logits (test only)";
  family.default_params = {{"value", 0.5}};
  family.factory = [](const nlohmann::json& params, const InputSpec&, int64_t num_classes) {
    return std::make_shared<ConstantModel>(num_classes, params.at("value").get<double>());
  };
  register_model_family(family);

  const auto families = model_families();
  EXPECT_TRUE(std::any_of(families.begin(), families.end(), [](const auto& f) { return f.name == "test_constant"; }));

  ModelSpec spec;
  spec.family = "test_constant";
  auto model = make_model(spec, 7, 3);
  ASSERT_NE(std::dynamic_pointer_cast<ConstantModel>(model), nullptr);
  EXPECT_EQ(model->embedding_dim(), 1);
  EXPECT_EQ(model->num_classes(), 3);
  const auto logits = model->forward(make_batch({{{1, 1.0f}}, {}}));
  EXPECT_TRUE(torch::allclose(logits, torch::full({2, 3}, 0.5)));

  spec.params = {{"value", 2.0}};
  EXPECT_TRUE(torch::allclose(make_model(spec, 7, 3)->forward(make_batch({{}})), torch::full({1, 3}, 2.0)));

  spec.params = {{"valu", 2.0}};
  expect_config_error([&] { (void)make_model(spec, 7, 3); },
                      {"model.params.valu is not a parameter of model family \"test_constant\"", "value"});
}

TEST(ModelRegistry, RegisterRejectsIncompleteFamily) {
  ModelFamily nameless;
  nameless.factory = [](const nlohmann::json&, const InputSpec&, int64_t c) {
    return std::make_shared<ConstantModel>(c, 0.0);
  };
  expect_config_error([&] { register_model_family(nameless); }, {"name must not be empty"});
  ModelFamily no_factory;
  no_factory.name = "test_no_factory";
  expect_config_error([&] { register_model_family(no_factory); }, {"\"test_no_factory\" has no factory"});
}

TEST(ModelRegistry, ConcurrentRegistrationAndLookup) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < 50; ++i) {
        ModelFamily family;
        family.name = "test_concurrent_" + std::to_string(t);
        family.default_params = nlohmann::json::object();
        family.factory = [](const nlohmann::json&, const InputSpec&, int64_t c) {
          return std::make_shared<ConstantModel>(c, 1.0);
        };
        register_model_family(family);
        ModelSpec spec;
        spec.family = family.name;
        if (!make_model(spec, 3, 2)) ++failures;
        if (model_families().size() < 4) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace kiln::nn
