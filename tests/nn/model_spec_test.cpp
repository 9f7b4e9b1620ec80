#include "kiln/nn/model_spec.h"

#include <gtest/gtest.h>

#include "nn_test_util.h"

namespace kiln::nn {
namespace {

using testing::expect_config_error;

TEST(ModelRegistry, SpecJsonRoundTrip) {
  ModelSpec spec;
  spec.family = "embedbag";
  spec.params = {{"dim", 64}, {"pooling", "sum"}};
  const auto j = to_json(spec);
  EXPECT_EQ(j, (nlohmann::json{{"family", "embedbag"}, {"params", {{"dim", 64}, {"pooling", "sum"}}}}));
  const auto back = model_spec_from_json(j);
  EXPECT_EQ(back.family, "embedbag");
  EXPECT_EQ(back.params, spec.params);
}

TEST(ModelRegistry, SpecFromJsonMissingKeysKeepDefaults) {
  const auto spec = model_spec_from_json(nlohmann::json::object());
  EXPECT_EQ(spec.family, "mlp");
  EXPECT_EQ(spec.params, nlohmann::json::object());
  const auto linear = model_spec_from_json({{"family", "linear"}, {"params", nullptr}});
  EXPECT_EQ(linear.family, "linear");
  EXPECT_EQ(linear.params, nlohmann::json::object());
}

TEST(ModelRegistry, SpecFromJsonRejectsNonObject) {
  expect_config_error([] { (void)model_spec_from_json(nlohmann::json::array()); }, {"model must be an object", "[]"});
}

TEST(ModelRegistry, SpecFromJsonRejectsNonStringFamily) {
  expect_config_error([] { (void)model_spec_from_json({{"family", 3}}); }, {"model.family", "string", "got 3"});
  expect_config_error([] { (void)model_spec_from_json({{"family", ""}}); }, {"model.family", "non-empty"});
}

TEST(ModelRegistry, SpecFromJsonRejectsNonObjectParams) {
  expect_config_error([] { (void)model_spec_from_json({{"family", "mlp"}, {"params", {1, 2}}}); },
                      {"model.params must be an object", "[1,2]"});
}

TEST(ModelRegistry, SpecFromJsonRejectsUnknownField) {
  expect_config_error([] { (void)model_spec_from_json({{"family", "mlp"}, {"hidden", {128}}}); },
                      {"model.hidden is not a model field", "family, params", "model.params"});
}

}  // namespace
}  // namespace kiln::nn
