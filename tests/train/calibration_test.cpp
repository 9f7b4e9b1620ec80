#include "kiln/train/calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"

using namespace kiln;

namespace {

// Golden values: tests/golden/make_temperature_golden.py (python3-torch LBFGS on log T).
TEST(TemperatureScaling, MatchesTorchLbfgsGoldens) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/train/temperature.json");
  ASSERT_TRUE(in) << "missing golden file";
  const auto golden = nlohmann::json::parse(in);
  for (const auto& c : golden["cases"]) {
    const auto values = c["logits"].get<std::vector<double>>();
    const auto labels = c["labels"].get<std::vector<int64_t>>();
    const int64_t classes = c["classes"].get<int64_t>();
    const auto logits = torch::tensor(values, torch::kFloat64).reshape({static_cast<int64_t>(labels.size()), classes});
    const auto fit = train::fit_temperature(logits, labels);
    const double expected = c["temperature"].get<double>();
    EXPECT_NEAR(fit.temperature, expected, 1e-6 * expected) << c["name"];
    EXPECT_NEAR(fit.nll_before, c["nll_before"].get<double>(), 1e-12) << c["name"];
    EXPECT_NEAR(fit.nll_after, c["nll_after"].get<double>(), 1e-10) << c["name"];
    EXPECT_LE(fit.nll_after, fit.nll_before);
  }
}

TEST(TemperatureScaling, SeparableDataHasNoOptimumAndKeepsTheTemperature) {
  // Every example on the right side: the NLL keeps falling as T -> 0.
  const auto logits = torch::tensor({{5.0f, -5.0f}, {-5.0f, 5.0f}, {4.0f, -4.0f}});
  const auto fit = train::fit_temperature(logits, {0, 1, 0});
  EXPECT_TRUE(fit.separable);
  EXPECT_EQ(fit.temperature, 1.0);
  EXPECT_EQ(fit.nll_after, fit.nll_before);
  // One mistake gives the NLL a finite optimum (float32 logits work too).
  const auto mixed = train::fit_temperature(torch::tensor({{5.0f, -5.0f}, {-5.0f, 5.0f}, {1.0f, -1.0f}}), {0, 1, 1});
  EXPECT_FALSE(mixed.separable);
  EXPECT_GT(mixed.temperature, train::kMinTemperature);
  EXPECT_LT(mixed.temperature, train::kMaxTemperature);
  EXPECT_LT(mixed.nll_after, mixed.nll_before);
}

TEST(TemperatureScaling, BadInputIsNamed) {
  auto message = [](const torch::Tensor& logits, const std::vector<int64_t>& y) {
    try {
      (void)train::fit_temperature(logits, y);
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message(torch::zeros({0, 3}), {}).find("needs logits [n >= 1, classes]"), std::string::npos);
  EXPECT_NE(message(torch::zeros({2, 3}), {0}).find("2 logit rows but 1 labels"), std::string::npos);
  EXPECT_NE(message(torch::zeros({2, 3}), {0, 3}).find("label[1] = 3 is outside [0, 3)"), std::string::npos);
  EXPECT_NE(message(torch::tensor({{1.0, std::nan("")}}), {0}).find("the logits are not all finite"), std::string::npos);
}

}  // namespace
