#include "kiln/train/losses.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"

namespace kiln::train {
namespace {

nlohmann::json read_golden(const std::string& name) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/train/" + name);
  EXPECT_TRUE(in) << "missing golden file " << name << "; run tests/golden/make_train_golden.py";
  return nlohmann::json::parse(in);
}

void flatten(const nlohmann::json& j, std::vector<double>& out) {
  if (j.is_array()) {
    for (const auto& e : j) flatten(e, out);
  } else {
    out.push_back(j.get<double>());
  }
}

torch::Tensor matrix(const nlohmann::json& rows, torch::Dtype dtype) {
  std::vector<double> flat;
  flatten(rows, flat);
  const auto r = static_cast<int64_t>(rows.size());
  return torch::tensor(flat, torch::kFloat64).reshape({r, static_cast<int64_t>(flat.size()) / r}).to(dtype);
}

LossOptions options_of(const nlohmann::json& j) {
  LossOptions o;
  o.kind = j.at("kind").get<std::string>();
  o.class_weight = j.at("class_weight").get<std::string>();
  o.class_weights = j.at("class_weights").get<std::vector<double>>();
  o.focal_gamma = j.at("focal_gamma").get<double>();
  o.focal_alpha = j.at("focal_alpha").get<std::vector<double>>();
  o.label_smoothing = j.at("label_smoothing").get<double>();
  return o;
}

template <typename Error, typename Fn>
void expect_error(Fn&& fn, const std::string& message) {
  try {
    fn();
    ADD_FAILURE() << "expected an error: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

LossOptions focal(double gamma) {
  LossOptions o;
  o.kind = "focal";
  o.focal_gamma = gamma;
  return o;
}

TEST(LossGolden, ValuesAndGradientsMatchTorch) {
  const auto golden = read_golden("losses.json");
  ASSERT_GE(golden.at("cases").size(), 15u);
  for (const auto& c : golden.at("cases")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const bool f32 = c.at("dtype") == "float32";
    const double tol = f32 ? 1e-5 : 1e-9;
    const auto loss = make_loss(options_of(c.at("options")), c.at("class_counts").get<std::vector<int64_t>>());
    const auto resolved = c.at("resolved_class_weights").get<std::vector<double>>();
    ASSERT_EQ(loss.class_weights().size(), resolved.size());
    for (std::size_t k = 0; k < resolved.size(); ++k) EXPECT_NEAR(loss.class_weights()[k], resolved[k], 1e-12);

    auto logits = matrix(c.at("logits"), f32 ? torch::kFloat32 : torch::kFloat64).requires_grad_(true);
    auto targets = torch::tensor(c.at("targets").get<std::vector<int64_t>>(), torch::kInt64);
    auto value = loss(logits, targets);
    ASSERT_EQ(value.dim(), 0);
    EXPECT_EQ(value.scalar_type(), logits.scalar_type());
    value.backward();
    EXPECT_NEAR(value.item<double>(), c.at("loss").get<double>(), tol);
    const auto want = matrix(c.at("grad"), torch::kFloat64);
    const auto got = logits.grad().to(torch::kFloat64);
    EXPECT_LE((got - want).abs().max().item<double>(), tol);
  }
}

TEST(LossGolden, BalancedClassWeightsMatchSklearn) {
  const auto golden = read_golden("losses.json");
  for (const auto& c : golden.at("balanced_class_weights")) {
    const auto got = balanced_class_weights(c.at("counts").get<std::vector<int64_t>>());
    const auto want = c.at("weights").get<std::vector<double>>();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t k = 0; k < got.size(); ++k) EXPECT_NEAR(got[k], want[k], 1e-12) << c.dump();
  }
}

TEST(LossBalancedWeights, ZeroCountIsAnError) {
  expect_error<DataError>([] { (void)balanced_class_weights({4, 0, 2}); },
                          "balanced class weights: class 1 has no training examples; add examples of it, drop it "
                          "from the label set, or give explicit class weights");
}

TEST(LossFocal, GammaZeroEqualsWeightedCrossEntropy) {
  torch::manual_seed(3);
  auto logits = torch::randn({20, 4}, torch::kFloat64);
  auto targets = torch::randint(0, 4, {20}, torch::kInt64);
  LossOptions ce;
  ce.class_weight = "balanced";
  LossOptions fl = focal(0.0);
  fl.class_weight = "balanced";
  const std::vector<int64_t> counts = {10, 3, 5, 2};
  EXPECT_NEAR(make_loss(fl, counts)(logits, targets).item<double>(),
              make_loss(ce, counts)(logits, targets).item<double>(), 1e-12);
}

TEST(LossFocal, StableWhenTheTargetProbabilityRoundsToOne) {
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    for (double gamma : {0.5, 2.0}) {
      auto logits = torch::tensor({{900.0, -900.0, 0.0}, {-50.0, 50.0, 3.0}}, dtype).requires_grad_(true);
      auto targets = torch::tensor({0, 2}, torch::kInt64);  // one certain-correct, one very wrong
      auto value = make_loss(focal(gamma), {1, 1, 1})(logits, targets);
      value.backward();
      EXPECT_TRUE(std::isfinite(value.item<double>())) << gamma;
      EXPECT_TRUE(torch::isfinite(logits.grad()).all().item<bool>()) << gamma << " " << logits.grad();
      EXPECT_NEAR(value.item<double>(), 0.5 * 47.0, 1e-3) << gamma;  // (1 - p)^g ~ 1, -log p ~ 47
    }
  }
}

TEST(LossFocal, ScalarAlphaScalesEveryClass) {
  torch::manual_seed(5);
  auto logits = torch::randn({6, 3}, torch::kFloat64);
  auto targets = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kInt64);
  LossOptions scaled = focal(2.0);
  scaled.focal_alpha = {0.25};
  EXPECT_NEAR(make_loss(scaled, {2, 2, 2})(logits, targets).item<double>(),
              0.25 * make_loss(focal(2.0), {2, 2, 2})(logits, targets).item<double>(), 1e-15);
}

TEST(LossInputs, RejectsTargetOutsideClasses) {
  auto loss = make_loss(LossOptions{}, {1, 1, 1});
  expect_error<DataError>([&] { (void)loss(torch::zeros({2, 3}), torch::tensor({0, 3}, torch::kInt64)); },
                          "loss: target 3 is outside [0, 3)");
  expect_error<DataError>([&] { (void)loss(torch::zeros({2, 3}), torch::tensor({-1, 0}, torch::kInt64)); },
                          "loss: target -1 is outside [0, 3)");
}

TEST(LossInputs, RejectsShapeAndDtypeMismatch) {
  auto loss = make_loss(LossOptions{}, {1, 1, 1});
  expect_error<DataError>([&] { (void)loss(torch::zeros({3}), torch::tensor({0}, torch::kInt64)); },
                          "loss: logits must be a floating-point [batch, classes] tensor, got 1-D Float");
  expect_error<DataError>([&] { (void)loss(torch::zeros({2, 3}), torch::tensor({0, 1}, torch::kInt32)); },
                          "loss: targets must be an int64 [batch] tensor with batch 2, got 1-D Int of length 2");
  expect_error<DataError>([&] { (void)loss(torch::zeros({2, 3}), torch::tensor({0, 1, 2}, torch::kInt64)); },
                          "loss: targets must be an int64 [batch] tensor with batch 2, got 1-D Long of length 3");
}

TEST(LossInputs, RejectsClassCountDifferentFromWeights) {
  LossOptions o;
  o.class_weight = "balanced";
  auto loss = make_loss(o, {1, 2, 3});
  expect_error<DataError>([&] { (void)loss(torch::zeros({2, 4}), torch::tensor({0, 1}, torch::kInt64)); },
                          "loss: logits have 4 classes but the loss has 3 class weights");
}

TEST(LossOptionsValidation, RejectsUnknownKind) {
  LossOptions o;
  o.kind = "hinge";
  expect_error<ConfigError>([&] { validate(o); }, "loss.kind must be cross_entropy or focal, got 'hinge'");
}

TEST(LossOptionsValidation, RejectsUnknownClassWeightMode) {
  LossOptions o;
  o.class_weight = "auto";
  expect_error<ConfigError>([&] { validate(o); }, "loss.class_weight must be none, balanced or explicit, got 'auto'");
}

TEST(LossOptionsValidation, ExplicitNeedsWeights) {
  LossOptions o;
  o.class_weight = "explicit";
  expect_error<ConfigError>([&] { validate(o); },
                            "loss.class_weight is 'explicit' but loss.class_weights is empty; give one weight per "
                            "class");
}

TEST(LossOptionsValidation, WeightsNeedExplicitMode) {
  LossOptions o;
  o.class_weight = "balanced";
  o.class_weights = {1, 2};
  expect_error<ConfigError>([&] { validate(o); },
                            "loss.class_weights is given but loss.class_weight is 'balanced'; set class_weight to "
                            "explicit to use them");
}

TEST(LossOptionsValidation, RejectsNegativeAndAllZeroWeights) {
  LossOptions o;
  o.class_weight = "explicit";
  o.class_weights = {1.0, -2.0};
  expect_error<ConfigError>([&] { validate(o); }, "loss.class_weights[1] must be finite and >= 0, got -2");
  o.class_weights = {0.0, 0.0};
  expect_error<ConfigError>([&] { validate(o); }, "loss.class_weights must be not all zero, got all zero");
}

TEST(LossOptionsValidation, RejectsWrongNumberOfWeights) {
  LossOptions o;
  o.class_weight = "explicit";
  o.class_weights = {1.0, 2.0};
  expect_error<ConfigError>([&] { (void)make_loss(o, {5, 5, 5}); },
                            "loss.class_weights has 2 entries but there are 3 classes; give one weight per class");
}

TEST(LossOptionsValidation, RejectsNegativeFocalGamma) {
  expect_error<ConfigError>([] { validate(focal(-1.0)); }, "loss.focal_gamma must be finite and >= 0, got -1");
}

TEST(LossOptionsValidation, RejectsBadFocalAlpha) {
  LossOptions o = focal(2.0);
  o.focal_alpha = {0.0};
  expect_error<ConfigError>([&] { validate(o); }, "loss.focal_alpha must be finite and > 0, got 0");
  o.focal_alpha = {0.5, 0.5};
  expect_error<ConfigError>([&] { (void)make_loss(o, {1, 1, 1}); },
                            "loss.focal_alpha has 2 entries but there are 3 classes; give one value for all classes "
                            "or one per class");
}

TEST(LossOptionsValidation, RejectsFocalAlphaWithCrossEntropy) {
  LossOptions o;
  o.focal_alpha = {0.25};
  expect_error<ConfigError>([&] { validate(o); },
                            "loss.focal_alpha is set but loss.kind is 'cross_entropy'; it applies only to kind focal");
}

TEST(LossOptionsValidation, RejectsLabelSmoothingOutOfRange) {
  LossOptions o;
  o.label_smoothing = 1.0;
  expect_error<ConfigError>([&] { validate(o); }, "loss.label_smoothing must be in [0, 1), got 1");
}

TEST(LossOptionsValidation, RejectsLabelSmoothingWithFocal) {
  LossOptions o = focal(2.0);
  o.label_smoothing = 0.1;
  expect_error<ConfigError>([&] { validate(o); },
                            "loss.label_smoothing is 0.1 but loss.kind is 'focal'; label smoothing applies only to "
                            "kind cross_entropy");
}

}  // namespace
}  // namespace kiln::train
