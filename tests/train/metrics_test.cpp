#include "kiln/train/metrics.h"

#include "kiln/core/error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace kiln::train {
namespace {

constexpr double kTol = 1e-9;

const nlohmann::json& golden() {
  static const nlohmann::json doc = [] {
    const std::string path = std::string(KILN_GOLDEN_DIR) + "/metrics_golden.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    return nlohmann::json::parse(in);
  }();
  return doc;
}

struct GoldenCase {
  std::string name;
  int64_t num_classes;
  std::vector<int64_t> y_true, y_pred;
  std::vector<double> probs;
  MetricsOptions options;
  nlohmann::json expected;
};

std::vector<GoldenCase> golden_cases() {
  std::vector<GoldenCase> cases;
  for (const auto& c : golden().at("cases")) {
    GoldenCase g;
    g.name = c.at("name").get<std::string>();
    g.num_classes = c.at("num_classes").get<int64_t>();
    g.y_true = c.at("y_true").get<std::vector<int64_t>>();
    g.y_pred = c.at("y_pred").get<std::vector<int64_t>>();
    g.probs = c.at("probabilities").get<std::vector<double>>();
    g.options.top_k = c.at("top_k").get<std::vector<int64_t>>();
    g.options.ece_bins = c.at("ece_bins").get<int64_t>();
    g.expected = c.at("expected");
    cases.push_back(std::move(g));
  }
  return cases;
}

void expect_matches_golden(const ClassificationMetrics& m, const GoldenCase& g) {
  SCOPED_TRACE("golden case " + g.name);
  const auto& e = g.expected;
  const std::size_t c = std::size_t(g.num_classes);
  EXPECT_EQ(m.n, e.at("n").get<int64_t>());
  EXPECT_EQ(m.num_classes, g.num_classes);
  EXPECT_NEAR(m.accuracy, e.at("accuracy").get<double>(), kTol);
  ASSERT_EQ(m.precision.size(), c);
  ASSERT_EQ(m.recall.size(), c);
  ASSERT_EQ(m.f1.size(), c);
  ASSERT_EQ(m.support.size(), c);
  for (std::size_t k = 0; k < c; ++k) {
    SCOPED_TRACE("class " + std::to_string(k));
    EXPECT_NEAR(m.precision[k], e.at("precision")[k].get<double>(), kTol);
    EXPECT_NEAR(m.recall[k], e.at("recall")[k].get<double>(), kTol);
    EXPECT_NEAR(m.f1[k], e.at("f1")[k].get<double>(), kTol);
    EXPECT_EQ(m.support[k], e.at("support")[k].get<int64_t>());
  }
  EXPECT_NEAR(m.macro_precision, e.at("macro")[0].get<double>(), kTol);
  EXPECT_NEAR(m.macro_recall, e.at("macro")[1].get<double>(), kTol);
  EXPECT_NEAR(m.macro_f1, e.at("macro")[2].get<double>(), kTol);
  EXPECT_NEAR(m.weighted_precision, e.at("weighted")[0].get<double>(), kTol);
  EXPECT_NEAR(m.weighted_recall, e.at("weighted")[1].get<double>(), kTol);
  EXPECT_NEAR(m.weighted_f1, e.at("weighted")[2].get<double>(), kTol);
  EXPECT_NEAR(m.micro_precision, e.at("micro")[0].get<double>(), kTol);
  EXPECT_NEAR(m.micro_recall, e.at("micro")[1].get<double>(), kTol);
  EXPECT_NEAR(m.micro_f1, e.at("micro")[2].get<double>(), kTol);
  EXPECT_EQ(m.confusion_matrix, e.at("confusion_matrix").get<std::vector<std::vector<int64_t>>>());

  ASSERT_TRUE(m.has_probabilities);
  const auto& topk = e.at("top_k_accuracy");
  ASSERT_EQ(m.top_k_accuracy.size(), topk.size());
  for (const auto& [k, v] : m.top_k_accuracy) {
    SCOPED_TRACE("top-" + std::to_string(k));
    EXPECT_NEAR(v, topk.at(std::to_string(k)).get<double>(), kTol);
  }
  ASSERT_TRUE(m.log_loss.has_value());
  EXPECT_NEAR(*m.log_loss, e.at("log_loss").get<double>(), kTol);
  ASSERT_TRUE(m.ece.has_value());
  EXPECT_NEAR(*m.ece, e.at("ece").get<double>(), kTol);
  const auto& rel = e.at("reliability");
  ASSERT_EQ(m.reliability.size(), rel.size());
  for (std::size_t b = 0; b < rel.size(); ++b) {
    SCOPED_TRACE("bin " + std::to_string(b));
    EXPECT_EQ(m.reliability[b].count, rel[b].at("count").get<int64_t>());
    EXPECT_NEAR(m.reliability[b].mean_confidence, rel[b].at("mean_confidence").get<double>(), kTol);
    EXPECT_NEAR(m.reliability[b].accuracy, rel[b].at("accuracy").get<double>(), kTol);
  }
}

TEST(Metrics, GoldenFileHasEveryCase) {
  std::vector<std::string> names;
  for (const auto& g : golden_cases()) names.push_back(g.name);
  for (const char* want : {"balanced", "long_tail", "zero_support", "binary", "ties", "independent_pred"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
}

TEST(Metrics, MatchesScikitLearn) {
  for (const auto& g : golden_cases()) {
    expect_matches_golden(compute_metrics(g.y_true, g.y_pred, g.probs, g.num_classes, g.options), g);
  }
}

TEST(Metrics, AccumulatorOverUnevenBatchesMatchesScikitLearn) {
  std::mt19937_64 rng(7);
  for (const auto& g : golden_cases()) {
    MetricsAccumulator acc(g.num_classes, g.options);
    const std::size_t n = g.y_true.size();
    const std::size_t c = std::size_t(g.num_classes);
    std::size_t start = 0;
    while (start < n) {
      const std::size_t len = std::min<std::size_t>(n - start, 1 + rng() % 37);
      acc.add(g.y_true.data() + start, g.y_pred.data() + start, g.probs.data() + start * c, len);
      start += len;
    }
    EXPECT_EQ(acc.size(), int64_t(n));
    expect_matches_golden(acc.compute(), g);
  }
}

TEST(Metrics, ReportMatchesScikitLearnClassificationReport) {
  for (const auto& g : golden_cases()) {
    SCOPED_TRACE("golden case " + g.name);
    const auto m = compute_metrics(g.y_true, g.y_pred, g.probs, g.num_classes, g.options);
    const auto names = g.expected.at("report_names").get<std::vector<std::string>>();
    const std::string table = format_metrics_table(m, names, 4);
    const std::string report = g.expected.at("report").get<std::string>();
    ASSERT_GE(table.size(), report.size());
    EXPECT_EQ(table.substr(0, report.size()), report);
    EXPECT_NE(table.find("log loss"), std::string::npos);
    EXPECT_NE(table.find("top-1 acc"), std::string::npos);
    EXPECT_NE(table.find("ECE " + std::to_string(g.options.ece_bins) + " bins"), std::string::npos);
  }
}

TEST(Metrics, TiesRankHigherClassIdFirst) {
  // Row 0: all equal, true class 0 ranks last; row 1: true class 2 ranks first among ties.
  const std::vector<double> p = {0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25};
  MetricsOptions opt;
  opt.top_k = {1, 3, 4};
  const auto m = compute_metrics({0, 3}, {0, 0}, p, 4, opt);
  EXPECT_DOUBLE_EQ(m.top_k_accuracy.at(1), 0.5);
  EXPECT_DOUBLE_EQ(m.top_k_accuracy.at(3), 0.5);
  EXPECT_DOUBLE_EQ(m.top_k_accuracy.at(4), 1.0);
}

TEST(Metrics, BinaryTopOneThresholdsClassOneAtHalf) {
  // p1 == 0.5 predicts class 0 (scikit-learn: p1 > 0.5), unlike the multiclass tie rule.
  const auto m = compute_metrics({0, 1}, {0, 0}, {0.5, 0.5, 0.5, 0.5}, 2, {});
  EXPECT_DOUBLE_EQ(m.top_k_accuracy.at(1), 0.5);
  EXPECT_DOUBLE_EQ(m.top_k_accuracy.at(3), 1.0);
}

TEST(Metrics, ZeroSupportClassCountsInMacroAverage) {
  // Class 2 is never true and never predicted: P = R = F1 = 0, and it still counts in the macro mean.
  const auto m = compute_metrics({0, 1, 0, 1}, {0, 1, 0, 0}, {}, 3, {});
  EXPECT_DOUBLE_EQ(m.precision[2], 0.0);
  EXPECT_DOUBLE_EQ(m.recall[2], 0.0);
  EXPECT_EQ(m.support[2], 0);
  EXPECT_DOUBLE_EQ(m.precision[0], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.recall[1], 0.5);
  EXPECT_DOUBLE_EQ(m.macro_recall, (1.0 + 0.5 + 0.0) / 3.0);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.75);
  EXPECT_DOUBLE_EQ(m.micro_f1, 0.75);
}

TEST(Metrics, WithoutProbabilitiesLeavesProbabilityMetricsUnset) {
  const auto m = compute_metrics({0, 1}, {0, 1}, {}, 2, {});
  EXPECT_FALSE(m.has_probabilities);
  EXPECT_TRUE(m.top_k_accuracy.empty());
  EXPECT_FALSE(m.log_loss.has_value());
  EXPECT_FALSE(m.ece.has_value());
  const nlohmann::json j = to_json(m, {"neg", "pos"});
  EXPECT_TRUE(j.at("log_loss").is_null());
  EXPECT_TRUE(j.at("ece").is_null());
  EXPECT_TRUE(j.at("top_k_accuracy").empty());
  const std::string table = format_metrics_table(m, {"neg", "pos"});
  EXPECT_EQ(table.find("log loss"), std::string::npos);
}

TEST(Metrics, EceBinEdgesAreRightClosed) {
  // Confidence 0.2 = 3/15 lies in bin 2 = (2/15, 3/15]; confidence 1 in the last bin.
  const std::vector<double> p = {0.2, 0.2, 0.2, 0.2, 0.2, 1.0, 0.0, 0.0, 0.0, 0.0};
  const auto m = compute_metrics({0, 1}, {0, 0}, p, 5, {});
  ASSERT_EQ(m.reliability.size(), 15u);
  EXPECT_EQ(m.reliability[2].count, 1);
  EXPECT_EQ(m.reliability[14].count, 1);
  EXPECT_DOUBLE_EQ(m.reliability[2].accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m.reliability[14].accuracy, 0.0);
  // ECE = 0.5 * |1 - 0.2| + 0.5 * |0 - 1|.
  EXPECT_DOUBLE_EQ(*m.ece, 0.5 * 0.8 + 0.5 * 1.0);
}

TEST(Metrics, ToJsonHasDocumentedKeys) {
  const auto cases = golden_cases();
  const GoldenCase& g = cases.front();
  const auto m = compute_metrics(g.y_true, g.y_pred, g.probs, g.num_classes, g.options);
  std::vector<std::string> labels;
  for (int64_t c = 0; c < g.num_classes; ++c) labels.push_back("label" + std::to_string(c));
  const nlohmann::json j = to_json(m, labels);
  for (const char* key : {"accuracy", "macro_f1", "weighted_f1", "micro_f1", "macro_precision",
                          "macro_recall", "weighted_precision", "weighted_recall", "per_class",
                          "confusion_matrix", "labels", "top_k_accuracy", "log_loss", "ece", "n"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j.at("n").get<int64_t>(), m.n);
  EXPECT_EQ(j.at("labels").get<std::vector<std::string>>(), labels);
  EXPECT_DOUBLE_EQ(j.at("per_class").at("label2").at("f1").get<double>(), m.f1[2]);
  EXPECT_EQ(j.at("per_class").at("label4").at("support").get<int64_t>(), m.support[4]);
  EXPECT_DOUBLE_EQ(j.at("top_k_accuracy").at("3").get<double>(), m.top_k_accuracy.at(3));
  EXPECT_EQ(j.at("confusion_matrix").get<std::vector<std::vector<int64_t>>>(), m.confusion_matrix);
  EXPECT_DOUBLE_EQ(j.at("log_loss").get<double>(), *m.log_loss);
  // Empty labels name classes by id.
  EXPECT_TRUE(to_json(m, {}).at("per_class").contains("4"));
}

template <typename E, typename F>
void expect_throw_message(F&& f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "expected an exception with message: " << message;
  } catch (const E& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(MetricsErrors, LengthMismatch) {
  expect_throw_message<DataError>([] { (void)compute_metrics({0, 1, 2}, {0, 1}, {}, 3); },
                                  "metrics: y_true has 3 entries but y_pred has 2; pass one prediction "
                                  "per target");
}

TEST(MetricsErrors, PredictionOutOfRange) {
  std::vector<int64_t> y_true(20, 0), y_pred(20, 1);
  y_pred[17] = 9;
  expect_throw_message<DataError>([&] { (void)compute_metrics(y_true, y_pred, {}, 5); },
                                  "metrics: y_pred[17] = 9 is outside [0, 5)");
}

TEST(MetricsErrors, TargetOutOfRangeCountsAcrossBatches) {
  MetricsAccumulator acc(3);
  acc.add({0, 1, 2}, {0, 1, 2});
  expect_throw_message<DataError>([&] { acc.add({0, -1}, {0, 0}); },
                                  "metrics: y_true[4] = -1 is outside [0, 3)");
  EXPECT_EQ(acc.size(), 3);  // the failed batch left no trace
}

TEST(MetricsErrors, ZeroClasses) {
  expect_throw_message<ConfigError>([] { (void)compute_metrics({}, {}, {}, 0); },
                                    "metrics: num_classes must be >= 1, got 0; pass the size of the "
                                    "label map");
  expect_throw_message<ConfigError>([] { MetricsAccumulator acc(0); },
                                    "metrics: num_classes must be >= 1, got 0; pass the size of the "
                                    "label map");
}

TEST(MetricsErrors, NoSamples) {
  expect_throw_message<DataError>([] { (void)compute_metrics({}, {}, {}, 2); },
                                  "metrics: no samples were added; metrics need at least one sample");
}

TEST(MetricsErrors, ProbabilitiesWrongSize) {
  expect_throw_message<DataError>(
      [] { (void)compute_metrics({0, 1}, {0, 1}, {0.5, 0.5, 1.0}, 2); },
      "metrics: probabilities has 3 values but 2 samples x 2 classes need 4 (row-major [n, C]), or "
      "pass none");
}

TEST(MetricsErrors, ProbabilityRowNotSummingToOne) {
  expect_throw_message<DataError>(
      [] { (void)compute_metrics({0, 1}, {0, 1}, {0.5, 0.5, 0.7, 0.7}, 2); },
      "metrics: probabilities row 1 sums to 1.3999999999999999, expected 1 within 0.001; pass "
      "softmax outputs, not logits");
}

TEST(MetricsErrors, NegativeProbability) {
  expect_throw_message<DataError>(
      [] { (void)compute_metrics({0}, {0}, {1.5, -0.5}, 2); },
      "metrics: probabilities[0][1] = -0.5 is not a probability (finite, >= 0); pass softmax outputs, "
      "not logits");
}

TEST(MetricsErrors, MixingBatchesWithAndWithoutProbabilities) {
  MetricsAccumulator acc(2);
  acc.add({0}, {0}, {0.9, 0.1});
  expect_throw_message<DataError>([&] { acc.add({1}, {1}); },
                                  "metrics: the batch starting at sample 1 has no probabilities but "
                                  "earlier batches had them; pass probabilities with every batch or "
                                  "with none");
}

TEST(MetricsErrors, BadOptions) {
  MetricsOptions o;
  o.top_k = {1, 0};
  expect_throw_message<ConfigError>([&] { validate(o); }, "metrics.top_k entries must be >= 1, got 0");
  o = {};
  o.ece_bins = 0;
  expect_throw_message<ConfigError>([&] { MetricsAccumulator acc(2, o); },
                                    "metrics.ece_bins must be >= 1, got 0");
  o = {};
  o.probability_tolerance = 1.5;
  expect_throw_message<ConfigError>([&] { validate(o); },
                                    "metrics.probability_tolerance must be in [0, 1), got 1.5");
  o = {};
  o.log_loss_eps = 0.0;
  expect_throw_message<ConfigError>([&] { validate(o); }, "metrics.log_loss_eps must be in (0, 0.5), got 0");
}

TEST(MetricsErrors, LabelsDoNotMatchClasses) {
  const auto m = compute_metrics({0, 1, 2}, {0, 1, 2}, {}, 3);
  expect_throw_message<ConfigError>([&] { (void)to_json(m, {"a", "b"}); },
                                    "metrics: 2 label names given for 3 classes; pass one name per "
                                    "class id or none");
  expect_throw_message<ConfigError>([&] { (void)format_metrics_table(m, {"a", "b", "a"}); },
                                    "metrics: label name \"a\" appears twice (second at index 2); label "
                                    "names must be unique");
}

}  // namespace
}  // namespace kiln::train
