// Kernel SHAP with a background on bag models (src/explain/background.cpp): for a linear model it
// must equal exact interventional linear SHAP with the same background (the golden weights of
// make_shap_golden.py), also when the background is summarised by k-means without rounding (the
// weighted centres keep the mean); additivity for an MLP; and the messages of misuse.
#include <gtest/gtest.h>

#include "kiln/core/error.h"
#include "kiln/explain/explainer.h"
#include "test_artifacts.h"

namespace kiln::explain {
namespace {

using testing::golden;
using testing::golden_artifact;
using testing::texts;
using testing::tiny_bert;

data::Examples explained() {
  data::Examples ex;
  for (const auto& x : golden()["explanations"]) ex.texts.push_back(x["text"]);
  return ex;
}

ExplainOptions options(Method m) {
  ExplainOptions o;
  o.method = m;
  o.background = texts(golden()["background"]);
  return o;
}

void expect_equal_attributions(const std::vector<ClassAttributions>& got, const std::vector<ClassAttributions>& want,
                               double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].features.size(), want[i].features.size()) << "example " << i;
    for (std::size_t f = 0; f < got[i].features.size(); ++f) {
      EXPECT_EQ(got[i].features[f].feature, want[i].features[f].feature);
      EXPECT_EQ(got[i].features[f].spans, want[i].features[f].spans);
      for (std::size_t c = 0; c < 3; ++c) {
        EXPECT_NEAR(got[i].values[f * 3 + c], want[i].values[f * 3 + c], tolerance) << got[i].features[f].feature;
      }
    }
    for (std::size_t c = 0; c < 3; ++c) {
      EXPECT_NEAR(got[i].base[c], want[i].base[c], tolerance);
      EXPECT_NEAR(got[i].output[c], want[i].output[c], tolerance);
    }
  }
}

TEST(BackgroundKernelShap, EqualsExactLinearShapOnALinearModel) {
  const artifact::Predictor p(golden_artifact());
  const auto linear = Explainer(p, options(Method::kLinear)).explain_all(explained());
  const auto kernel = Explainer(p, options(Method::kKernel)).explain_all(explained());
  expect_equal_attributions(kernel, linear, 1e-5);
  // Sampled: still exact, the model being linear in the coalition (as long as the sample has full rank).
  ExplainOptions few = options(Method::kKernel);
  few.kernel.nsamples = 60;  // more coalitions than features (full rank), far fewer than 2^M
  expect_equal_attributions(Explainer(p, few).explain_all(explained()), linear, 1e-5);
}

TEST(BackgroundKernelShap, KMeansSummaryKeepsTheMean) {
  const artifact::Predictor p(golden_artifact());
  const auto linear = Explainer(p, options(Method::kLinear)).explain_all(explained());
  ExplainOptions o = options(Method::kKernel);
  KMeansOptions k;
  k.k = 2;
  k.round_values = false;  // centres weighted by cluster share average to the background's mean
  o.background_summary = k;
  expect_equal_attributions(Explainer(p, o).explain_all(explained()), linear, 1e-5);
  // shap.kmeans's rounding moves the centres (and so the base value) but keeps additivity.
  o.background_summary->round_values = true;
  const auto rounded = Explainer(p, o).explain_all(explained());
  for (const auto& a : rounded) {
    for (std::size_t c = 0; c < 3; ++c) {
      double sum = a.base[c];
      for (std::size_t f = 0; f < a.features.size(); ++f) sum += a.values[f * 3 + c];
      EXPECT_NEAR(sum, a.output[c], 1e-6);
    }
  }
}

TEST(BackgroundKernelShap, IsAdditiveOnAnMlp) {
  const artifact::Predictor p(golden_artifact("mlp"));
  const data::Examples ex = explained();
  const auto all = Explainer(p, options(Method::kKernel)).explain_all(ex);
  const auto logits = p.forward(p.encode(ex)).to(torch::kFloat64);
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].features.back().feature, kAbsentFeatures);
    for (std::size_t c = 0; c < 3; ++c) {
      double sum = all[i].base[c];
      for (std::size_t f = 0; f < all[i].features.size(); ++f) sum += all[i].values[f * 3 + c];
      EXPECT_NEAR(sum, all[i].output[c], 1e-6);
      EXPECT_NEAR(all[i].output[c], logits[static_cast<int64_t>(i)][static_cast<int64_t>(c)].item<double>(), 1e-5);
    }
  }
}

std::string config_error(const artifact::Predictor& p, const ExplainOptions& o) {
  try {
    Explainer e(p, o);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BackgroundKernelShap, MisuseIsAConfigErrorNamingTheFlag) {
  const artifact::Predictor bert(tiny_bert());
  EXPECT_NE(config_error(bert, options(Method::kKernel)).find("reads no bag of features only; drop --background"),
            std::string::npos);
  EXPECT_NE(config_error(bert, options(Method::kPartition)).find("--background applies to --method linear (E[x]) and kernel"),
            std::string::npos);
  const artifact::Predictor linear(golden_artifact());
  ExplainOptions k = options(Method::kLinear);
  k.background_summary = KMeansOptions{};
  EXPECT_NE(config_error(linear, k).find("--background-k summarises Kernel SHAP's background, and this run explains with "
                                         "method linear"),
            std::string::npos);
  ExplainOptions none;
  none.method = Method::kKernel;
  none.background_summary = KMeansOptions{};
  EXPECT_NE(config_error(linear, none).find("no background was given; add --background FILE"), std::string::npos);
  ExplainOptions many = options(Method::kKernel);
  many.background_summary = KMeansOptions{};
  many.background_summary->k = 1000;
  EXPECT_NE(config_error(linear, many).find("clusters need at least as many rows"), std::string::npos);
}

}  // namespace
}  // namespace kiln::explain
