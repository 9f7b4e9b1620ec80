#include "kiln/serve/drift.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kiln/core/error.h"

namespace kiln::serve {
namespace {

nlohmann::json profile() {
  return nlohmann::json::parse(R"({
    "n": 100,
    "text_length": {"edges": [0, 16, 64], "shares": [0.5, 0.5, 0.0], "mean": 20},
    "top_features": [{"feature": "the", "doc_share": 0.8, "index": 3}, {"feature": "spam", "doc_share": 0.1, "index": 9}]
  })");
}

std::string config_error(const nlohmann::json& p, std::size_t capacity = 10) {
  try {
    DriftWindow w(p, capacity);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST(Psi, MatchesTheDefinition) {
  EXPECT_EQ(population_stability_index({0.2, 0.3, 0.5}, {0.2, 0.3, 0.5}), 0.0);
  // (0.9 - 0.5) ln(0.9 / 0.5) + (0.1 - 0.5) ln(0.1 / 0.5)
  EXPECT_NEAR(population_stability_index({0.5, 0.5}, {0.9, 0.1}), 0.4 * std::log(1.8) + 0.4 * std::log(5.0), 1e-12);
  // An empty bin is floored, not infinite.
  const double psi = population_stability_index({1.0, 0.0}, {0.5, 0.5});
  EXPECT_TRUE(std::isfinite(psi));
  EXPECT_NEAR(psi, -0.5 * std::log(0.5) + (0.5 - 1e-4) * std::log(0.5 / 1e-4), 1e-12);
  try {
    (void)population_stability_index({1.0}, {0.5, 0.5});
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "PSI needs the same bins on both sides; got 1 and 2");
  }
}

TEST(DriftWindow, BinsLengthsAsTheProfileDoes) {
  DriftWindow w(profile(), 4);
  EXPECT_EQ(w.length_bin(0), 0u);
  EXPECT_EQ(w.length_bin(15), 0u);
  EXPECT_EQ(w.length_bin(16), 1u);
  EXPECT_EQ(w.length_bin(63), 1u);
  EXPECT_EQ(w.length_bin(64), 2u);
  EXPECT_EQ(w.length_bin(1 << 20), 2u);
}

TEST(DriftWindow, TrafficLikeTrainingHasNoLengthDrift) {
  DriftWindow w(profile(), 4);
  EXPECT_EQ(w.report().window, 0u);
  w.observe({10, 0.0, {0}});
  w.observe({20, 0.0, {0}});
  w.observe({12, 0.5, {0}});
  w.observe({30, 0.5, {0, 1}});
  const auto r = w.report();
  EXPECT_EQ(r.window, 4u);
  EXPECT_NEAR(r.length_psi, 0.0, 1e-12);
  EXPECT_NEAR(r.oov_rate, 0.25, 1e-12);
  EXPECT_EQ(r.top_feature_shares, (std::vector<double>{1.0, 0.25}));
  EXPECT_NEAR(r.top_feature_shift, (0.2 + 0.15) / 2, 1e-12);
}

TEST(DriftWindow, SlidesOverTheMostRecentTexts) {
  DriftWindow w(profile(), 2);
  w.observe({10, 1.0, {1}});
  w.observe({100, 0.0, {}});
  w.observe({200, 0.0, {}});  // evicts the first
  const auto r = w.report();
  EXPECT_EQ(r.window, 2u);
  EXPECT_EQ(r.length_shares, (std::vector<double>{0.0, 0.0, 1.0}));
  EXPECT_EQ(r.oov_rate, 0.0);
  EXPECT_EQ(r.top_feature_shares, (std::vector<double>{0.0, 0.0}));
  EXPECT_GT(r.length_psi, 0.2);  // every text in a bin training never saw
  EXPECT_NEAR(r.length_psi, population_stability_index({0.5, 0.5, 0.0}, {0.0, 0.0, 1.0}), 1e-12);
}

TEST(DriftWindow, RejectsBadProfilesWithClearMessages) {
  auto p = profile();
  p.erase("text_length");
  EXPECT_EQ(config_error(p),
            "the artifact's data profile has no text_length; retrain with this Kiln version to get a profile the "
            "drift monitor can use");
  p = profile();
  p["text_length"].erase("shares");
  EXPECT_EQ(config_error(p),
            "the artifact's data profile has no text_length.shares; retrain with this Kiln version to get a profile "
            "the drift monitor can use");
  p = profile();
  p["text_length"]["shares"] = {0.5, 0.5};
  EXPECT_EQ(config_error(p),
            "the artifact's data profile has text_length edges and shares that do not match (3 edges from 0 upwards, "
            "2 shares expected equal)");
  p = profile();
  p["top_features"][0]["doc_share"] = "high";
  EXPECT_NE(config_error(p).find("the artifact's data profile is malformed ("), std::string::npos);
  EXPECT_EQ(config_error(profile(), 0), "the drift window needs room for at least 1 text, got 0");
}

DriftSample image_sample(double intensity, double pixels) {
  DriftSample s;
  s.has_text = false;
  s.has_image = true;
  s.intensity = intensity;
  s.pixels = pixels;
  return s;
}

TEST(DriftWindow, ImagesIntensityAndSizeAgainstTraining) {
  const auto p = nlohmann::json::parse(R"({
    "n": 10,
    "image_intensity": {"edges": [0, 64, 128], "shares": [0.5, 0.5, 0.0], "mean": 60},
    "image_size": {"edges": [0, 1024, 4096], "shares": [1.0, 0.0, 0.0], "mean": 784}
  })");
  DriftWindow w(p, 4);
  EXPECT_FALSE(w.has_text_profile());
  EXPECT_TRUE(w.has_image_profile());
  w.observe(image_sample(10, 784));
  w.observe(image_sample(100, 784));
  auto r = w.report();
  EXPECT_EQ(r.window, 2u);
  EXPECT_EQ(r.image_window, 2u);
  EXPECT_NEAR(r.intensity_psi, 0.0, 1e-12);
  EXPECT_NEAR(r.size_psi, 0.0, 1e-12);
  EXPECT_NEAR(r.mean_intensity, 55.0, 1e-12);
  EXPECT_EQ(r.length_psi, 0.0);  // no text profile: text signals stay 0
  w.observe(image_sample(200, 5000));  // bright and large: bins training never saw
  w.observe(image_sample(250, 5000));
  w.observe(image_sample(240, 5000));  // evicts the first
  r = w.report();
  EXPECT_EQ(r.image_window, 4u);
  EXPECT_NEAR(r.intensity_psi, population_stability_index({0.5, 0.5, 0.0}, {0.0, 0.25, 0.75}), 1e-12);
  EXPECT_NEAR(r.size_psi, population_stability_index({1.0, 0.0, 0.0}, {0.25, 0.0, 0.75}), 1e-12);
  EXPECT_NEAR(r.mean_intensity, (100 + 200 + 250 + 240) / 4.0, 1e-12);
  auto bad = p;
  bad["image_size"]["shares"] = {1.0};
  EXPECT_EQ(config_error(bad), "the artifact's data profile has image_size edges and shares that do not match; retrain "
                               "the model or restore kiln.json");
}

}  // namespace
}  // namespace kiln::serve
