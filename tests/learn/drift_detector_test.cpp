#include "kiln/learn/drift_detector.h"

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"

using namespace kiln;

namespace {

nlohmann::json golden() {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/learn/drift_golden.json");
  EXPECT_TRUE(in.good()) << "run tests/golden/make_drift_golden.py";
  return nlohmann::json::parse(in);
}

std::vector<int64_t> fire(learn::DriftDetector& d, const std::string& stream) {
  std::vector<int64_t> at;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    if (d.update(static_cast<double>(stream[i] - '0'))) at.push_back(static_cast<int64_t>(i));
  }
  return at;
}

}  // namespace

// The Python reference (checked there against River's documented examples) and Kiln agree on every
// index where each detector fires, on 0/1 error streams and on River's own example stream.
TEST(DriftDetectors, FireWhereRiversAlgorithmFires) {
  const auto g = golden();
  ASSERT_GE(g["cases"].size(), 5u);
  int total = 0;
  for (const auto& c : g["cases"]) {
    const auto stream = c["stream"].get<std::string>();
    learn::Adwin adwin;
    learn::PageHinkley ph;
    EXPECT_EQ(fire(adwin, stream), c["adwin"].get<std::vector<int64_t>>()) << c["name"];
    EXPECT_EQ(fire(ph, stream), c["page_hinkley"].get<std::vector<int64_t>>()) << c["name"];
    EXPECT_EQ(adwin.detections(), static_cast<int64_t>(c["adwin"].size()));
    total += static_cast<int>(c["adwin"].size() + c["page_hinkley"].size());
  }
  EXPECT_GT(total, 10);  // the streams do drift: the comparison is not between two empty lists
}

TEST(DriftDetectors, AdwinEstimatesTheWindowsErrorRate) {
  learn::Adwin adwin;
  for (int i = 0; i < 1000; ++i) adwin.update(i % 4 == 0 ? 1.0 : 0.0);
  EXPECT_NEAR(adwin.estimation(), 0.25, 0.01);
  EXPECT_EQ(adwin.detections(), 0);
}

TEST(DriftDetectors, OptionsAreValidatedWithTheFieldAndValue) {
  learn::AdwinOptions a;
  a.delta = 1.5;
  try {
    learn::Adwin bad(a);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("adwin.delta must be in (0, 1), got 1.5"), std::string::npos) << e.what();
  }
  learn::PageHinkleyOptions p;
  p.alpha = 0;
  try {
    learn::PageHinkley bad(p);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("page_hinkley.alpha must be in (0, 1], got 0"), std::string::npos) << e.what();
  }
}
