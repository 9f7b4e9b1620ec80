// The Explainer on an in-memory artifact (TF-IDF word 1-2-grams + family linear with the golden
// weights): exact linear SHAP against tests/golden/make_shap_golden.py, spans, additivity of every
// method, integrated gradients' completeness, global importance, and the errors.
#include "kiln/explain/explainer.h"
#include "test_artifacts.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include "kiln/core/error.h"
#include "kiln/nn/bert.h"
#include "kiln/nn/input_spec.h"
#include "kiln/nn/model.h"
#include "kiln/prep/text_features.h"
#include "kiln/prep/preprocessor.h"

namespace kiln::explain {
namespace {

using testing::golden;
using testing::golden_artifact;
using testing::texts;
using testing::tiny_bert;

ExplainOptions with_background(std::optional<Method> m = std::nullopt) {
  ExplainOptions o;
  o.method = m;
  o.background = texts(golden()["background"]);
  return o;
}

std::string config_error(const artifact::Predictor& p, const ExplainOptions& o) {
  try {
    Explainer e(p, o);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LinearShap, EqualsTheGoldenValuesWithSpansAndAbsentFeatures) {
  const artifact::Predictor p(golden_artifact());
  const Explainer e(p, with_background());
  EXPECT_EQ(e.method(), Method::kLinear) << "auto picks exact linear SHAP for the linear family";
  data::Examples ex;
  for (const auto& x : golden()["explanations"]) ex.texts.push_back(x["text"]);
  const auto all = e.explain_all(ex);
  const auto logits = p.forward(p.encode(ex)).to(torch::kFloat64);
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& want = golden()["explanations"][i];
    const auto& got = all[i];
    ASSERT_EQ(got.features.size(), want["phi"].size() + 1) << ex.texts[i];
    for (std::size_t f = 0; f < got.features.size(); ++f) {
      const auto& name = got.features[f].feature;
      const auto expected = name == kAbsentFeatures ? want["absent"] : want["phi"].at(name);
      for (std::size_t c = 0; c < 3; ++c) {
        EXPECT_NEAR(got.values[f * 3 + c], expected[c].get<double>(), 1e-5) << name;
      }
      if (name == kAbsentFeatures) continue;
      std::vector<std::pair<int64_t, int64_t>> spans;
      for (const auto& s : want["spans"].at(name)) spans.emplace_back(s[0], s[1]);
      EXPECT_EQ(got.features[f].spans, spans) << name << " in " << ex.texts[i];
    }
    for (std::size_t c = 0; c < 3; ++c) {
      EXPECT_NEAR(got.base[c], want["base"][c].get<double>(), 1e-5);
      EXPECT_NEAR(got.output[c], want["logits"][c].get<double>(), 1e-5);
      EXPECT_NEAR(got.output[c], logits[static_cast<int64_t>(i)][static_cast<int64_t>(c)].item<double>(), 1e-4)
          << "the model's own logits";
      double sum = got.base[c];
      for (std::size_t f = 0; f < got.features.size(); ++f) sum += got.values[f * 3 + c];
      EXPECT_NEAR(sum, got.output[c], 1e-6) << "base + sum(phi) = f(x)";
    }
  }
  // The per-example view explains the predicted class.
  const auto one = e.explain(ex);
  EXPECT_EQ(one[0].label, p.labels()[static_cast<std::size_t>(logits[0].argmax().item<int64_t>())]);
  EXPECT_LT(one[0].additivity_error(), 1e-6);
  EXPECT_EQ(to_json(one[0])["method"], "linear");
}

TEST(Explainer, KernelAndPartitionAreAdditiveOnWords) {
  const artifact::Predictor p(golden_artifact());
  data::Examples ex;
  ex.texts = {"The cat sat on the mat, the cat!"};
  for (Method m : {Method::kKernel, Method::kPartition}) {
    ExplainOptions o;  // no background: words are masked
    o.method = m;
    const Explainer e(p, o);
    const auto all = e.explain_all(ex);
    ASSERT_EQ(all.size(), 1u);
    // Words of the vocabulary: the, cat, sat, on, the, mat, the, cat (all covered by features).
    ASSERT_EQ(all[0].features.size(), 8u) << method_name(m);
    EXPECT_EQ(all[0].features[5].feature, "mat");
    EXPECT_EQ(all[0].features[5].spans, (std::vector<std::pair<int64_t, int64_t>>{{19, 22}}));
    for (std::size_t c = 0; c < 3; ++c) {
      double sum = all[0].base[c];
      for (std::size_t f = 0; f < 8; ++f) sum += all[0].values[f * 3 + c];
      EXPECT_NEAR(sum, all[0].output[c], 1e-6) << method_name(m);
    }
    // f(empty) is the model on the text with every word dropped.
    data::Examples empty;
    const bool none[8] = {};
    empty.texts = {masked_text(ex.texts[0], text_words(ex.texts[0], std::nullopt), none, "")};
    const auto f0 = p.forward(p.encode(empty)).to(torch::kFloat64);
    EXPECT_NEAR(all[0].base[0], f0[0][0].item<double>(), 1e-6);
  }
}

TEST(Explainer, TextWordsAndMasking) {
  const std::string text = "Café, au lait — a b x!";
  const auto words = text_words(text, std::nullopt);
  ASSERT_EQ(words.size(), 6u);
  EXPECT_EQ(text.substr(words[0].begin, words[0].end - words[0].begin), "Café");
  const bool keep[6] = {true, false, true, true, false, true};
  EXPECT_EQ(masked_text(text, words, keep, "[MASK]"), "Café, [MASK] lait — a [MASK] x!");
  EXPECT_EQ(masked_text(text, words, keep, ""), "Café,  lait — a  x!");
  // With bag spans, only the words some feature covers.
  std::vector<prep::FeatureSpan> spans = {{0, 0, 5}, {1, 7, 9}};
  EXPECT_EQ(text_words(text, spans).size(), 2u);
}

TEST(Explainer, IntegratedGradientsAreCompleteOnBagWeights) {
  const artifact::Predictor p(golden_artifact("mlp"));
  ExplainOptions o;
  o.method = Method::kIntegratedGradients;
  const Explainer e(p, o);
  data::Examples ex;
  ex.texts = {"the cat sat on the mat", "dogs and birds"};
  for (const auto& a : e.explain_all(ex)) {
    ASSERT_TRUE(a.delta);
    for (std::size_t c = 0; c < 3; ++c) {
      const double change = std::abs(a.output[c] - a.base[c]);
      EXPECT_LT((*a.delta)[c], 0.01 * std::max(change, 1e-3)) << "completeness within 1% at 50 steps";
    }
  }
}

TEST(Explainer, GlobalImportanceOfLinearShapIsMeanAbsolutePhi) {
  const artifact::Predictor p(golden_artifact());
  const Explainer e(p, with_background());
  const data::Examples ex = texts(golden()["train"]);
  const GlobalImportance g = e.global_importance(ex);
  ASSERT_EQ(g.classes.size(), 3u);
  EXPECT_EQ(g.rows, 6);
  // Brute force from explain_all: per row, present features carry φ; every absent feature j carries
  // −w_j E[x_j], so the mean over rows of |φ_cat| needs the dense x.
  const auto x = p.encode(ex);
  const auto all = e.explain_all(ex);
  double want = 0;
  for (const auto& a : all) {
    bool found = false;
    for (std::size_t f = 0; f < a.features.size(); ++f) {
      if (a.features[f].feature == "cat") {
        want += std::abs(a.values[f * 3]);
        found = true;
      }
    }
    if (!found) {
      const double w = golden()["weights"]["cat"][0];
      const auto bg = p.encode(texts(golden()["background"]));
      // E[x_cat] over the background, from its bag.
      double mean = 0;
      const auto& idx = bg.at("bag_indices");
      for (int64_t k = 0; k < idx.size(0); ++k) {
        if (p.preprocessors()[0]->feature_name(idx[k].item<int64_t>()) == "cat") mean += bg.at("bag_weights")[k].item<double>();
      }
      want += std::abs(w * mean / 3.0);
    }
  }
  want /= 6.0;
  double got = -1;
  for (const auto& [name, v] : g.classes[0]) {
    if (name == "cat") got = v;
  }
  EXPECT_NEAR(got, want, 1e-6);
  for (std::size_t k = 1; k < g.classes[0].size(); ++k) EXPECT_GE(g.classes[0][k - 1].second, g.classes[0][k].second);
  const auto j = to_json(g, 5);
  EXPECT_EQ(j["classes"][0]["features"].size(), 5u);
  EXPECT_EQ(j["method"], "linear");
  EXPECT_EQ(j["space"], "logit");
}

// A tiny BERT over a WordPiece vocabulary learnt on the golden texts: auto picks Owen values, hidden
// words become [MASK] (the base value is the model on the all-[MASK] text).
TEST(Explainer, WordPieceModelsGetOwenValuesWithMaskTokens) {
  const artifact::Predictor p(tiny_bert());
  const Explainer e(p, {});
  EXPECT_EQ(e.method(), Method::kPartition);
  data::Examples ex;
  ex.texts = {"the cat sat on the log"};
  const auto all = e.explain_all(ex);
  ASSERT_EQ(all[0].features.size(), 6u);
  data::Examples masked;
  masked.texts = {"[MASK] [MASK] [MASK] [MASK] [MASK] [MASK]"};
  const auto f0 = p.forward(p.encode(masked)).to(torch::kFloat64);
  const auto fx = p.forward(p.encode(ex)).to(torch::kFloat64);
  for (std::size_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(all[0].base[c], f0[0][static_cast<int64_t>(c)].item<double>(), 1e-5);
    EXPECT_NEAR(all[0].output[c], fx[0][static_cast<int64_t>(c)].item<double>(), 1e-5);
    double sum = all[0].base[c];
    for (std::size_t f = 0; f < 6; ++f) sum += all[0].values[f * 3 + c];
    EXPECT_NEAR(sum, all[0].output[c], 1e-6);
  }
}

// Integrated gradients over BERT's word embeddings: one attribution per WordPiece token (not
// [CLS]/[SEP]) with its span, complete to 1% of f(x) − f(baseline) at the default 50 steps, the
// output equal to the model's own logits, and the baseline the model on [PAD] (or zero) embeddings.
TEST(Explainer, IntegratedGradientsOnBertTokensAreComplete) {
  const artifact::Predictor p(tiny_bert());
  ExplainOptions o;
  o.method = Method::kIntegratedGradients;
  const Explainer e(p, o);
  data::Examples ex;
  ex.texts = {"the cat sat on the log", "Dogs and birds!"};
  const auto all = e.explain_all(ex);
  const auto logits = p.forward(p.encode(ex)).to(torch::kFloat64);
  const auto& pre = *p.preprocessors().front();
  const auto* tf = dynamic_cast<const prep::TextFeatures*>(&pre);
  ASSERT_NE(tf, nullptr);
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& a = all[i];
    const auto offsets = tf->token_offsets(ex.texts[i]);
    ASSERT_TRUE(offsets);
    ASSERT_EQ(a.features.size(), offsets->size() - 2) << "every token but [CLS] and [SEP]";
    ASSERT_TRUE(a.delta);
    for (std::size_t f = 0; f < a.features.size(); ++f) {
      ASSERT_EQ(a.features[f].spans.size(), 1u);
      const auto [s, t] = a.features[f].spans[0];
      std::string piece = a.features[f].feature;
      if (piece == "[UNK]") continue;
      if (piece.rfind("##", 0) == 0) piece = piece.substr(2);
      std::string word = ex.texts[i].substr(static_cast<std::size_t>(s), static_cast<std::size_t>(t - s));  // ASCII
      std::transform(word.begin(), word.end(), word.begin(), [](unsigned char ch) { return std::tolower(ch); });
      EXPECT_EQ(word, piece) << "token " << f << " of " << ex.texts[i];
    }
    for (std::size_t c = 0; c < 3; ++c) {
      EXPECT_NEAR(a.output[c], logits[static_cast<int64_t>(i)][static_cast<int64_t>(c)].item<double>(), 1e-4)
          << "f(x) through inputs_embeds = the model's logits";
      double sum = 0;
      for (std::size_t f = 0; f < a.features.size(); ++f) sum += a.values[f * 3 + c];
      const double change = std::abs(a.output[c] - a.base[c]);
      EXPECT_NEAR((*a.delta)[c], std::abs(a.output[c] - a.base[c] - sum), 1e-9);
      EXPECT_LT((*a.delta)[c], 0.01 * std::max(change, 1e-3)) << "completeness within 1% at 50 steps, class " << c;
    }
  }
  // The baseline: [CLS] + [PAD] x n + [SEP] as ids (the [PAD] row is what the lookup gives).
  const auto enc = p.encode(ex.select({0}));
  auto ids = enc.at(nn::kInputIds).clone();
  const int64_t pad = dynamic_cast<const nn::BertModel&>(*p.model()).options().config.pad_token_id;
  ids.narrow(1, 1, ids.size(1) - 2).fill_(pad);
  nn::Batch padded = enc;
  padded.set(nn::kInputIds, ids);
  const auto f0 = p.forward(padded).to(torch::kFloat64);
  for (int64_t c = 0; c < 3; ++c) EXPECT_NEAR(all[0].base[static_cast<std::size_t>(c)], f0[0][c].item<double>(), 1e-4);

  // Zero baseline: the same as [PAD] while the [PAD] row is zero (BERT's init), different once it is not.
  ExplainOptions z = o;
  z.ig_baseline = IgBaseline::kZero;
  const auto zero = Explainer(p, z).explain_all(ex.select({0}));
  EXPECT_NEAR(zero[0].base[0], all[0].base[0], 1e-6);
  {
    torch::NoGradGuard no_grad;
    auto table = dynamic_cast<nn::BertModel&>(*p.model()).word_embeddings_weight();
    table[pad].copy_(table[5]);  // not a constant row: the embeddings' LayerNorm removes constant shifts
  }
  const auto moved = Explainer(p, o).explain_all(ex.select({0}));
  const auto still = Explainer(p, z).explain_all(ex.select({0}));
  EXPECT_GT(std::abs(moved[0].base[0] - still[0].base[0]), 1e-6);
  EXPECT_NEAR(still[0].base[0], zero[0].base[0], 1e-6);
}

TEST(Explainer, IntegratedGradientsOnTokensRefuseWindowsAndBadBaselines) {
  const artifact::Predictor p(tiny_bert({{"type", "wordpiece"}, {"vocab_size", 60}, {"long_text", "window"}, {"max_length", 8}}));
  ExplainOptions o;
  o.method = Method::kIntegratedGradients;
  EXPECT_NE(config_error(p, o).find("splits long texts into windows (long_text: window); use --method partition"),
            std::string::npos)
      << config_error(p, o);
  try {
    (void)parse_ig_baseline("mean", "--ig-baseline");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--ig-baseline must be pad ([PAD] word embeddings) or zero (zero word embeddings), got 'mean'"),
              std::string::npos);
  }
}

TEST(Explainer, ErrorsNameTheProblemAndTheFix) {
  const artifact::Predictor mlp(golden_artifact("mlp"));
  EXPECT_NE(config_error(mlp, with_background(Method::kLinear)).find("needs a model of family linear"), std::string::npos);
  const artifact::Predictor linear(golden_artifact());
  ExplainOptions prob = with_background(Method::kLinear);
  prob.space = Space::kProbability;
  EXPECT_NE(config_error(linear, prob).find("additive in logits only"), std::string::npos);
  ExplainOptions none;
  EXPECT_NE(config_error(linear, none).find("pass --background FILE"), std::string::npos);
  EXPECT_NE(config_error(linear, [] { ExplainOptions o; o.ig_steps = 0; return o; }()).find("ig_steps"), std::string::npos);
  try {
    (void)parse_method("shapley", "--method");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--method must be one of auto, linear, kernel, partition, ig, got 'shapley'"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace kiln::explain
