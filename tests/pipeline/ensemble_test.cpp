// Ensembles: the model averages its members' calibrated probabilities exactly, keeps each member's
// tensors apart, and survives the artifact round trip; bad ensemble specs are named.
#include "kiln/nn/ensemble.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "kiln/artifact/predictor.h"
#include "kiln/core/error.h"
#include "kiln/pipeline/pipeline.h"
#include "kiln/prep/ensemble.h"
#include "topic_data.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {

using pipeline_test::topics;

pipeline::PipelineResult trained(const std::string& preset, int epochs, const data::Dataset& train,
                                 const data::Dataset& val) {
  auto cfg = train::preset_config(preset);
  cfg.trainer.epochs = epochs;
  cfg.trainer.calibrate = "none";
  return pipeline::run_pipeline(cfg, train, &val, nullptr);
}

}  // namespace

TEST(Ensemble, AveragesTheMembersCalibratedProbabilitiesAndSurvivesTheArtifact) {
  const auto train = topics(300, 1), val = topics(60, 2);
  const auto a = trained("logreg", 3, train, val);
  const auto b = trained("fasttext", 2, train, val);
  ASSERT_EQ(a.artifact.manifest.labels, b.artifact.manifest.labels);
  const auto classes = static_cast<int64_t>(a.artifact.manifest.labels.size());

  // Temperatures 2 and 0.5, weights 1 and 3 (normalised to 0.25 and 0.75).
  const nn::Ensemble ens = nn::make_ensemble(
      {{a.artifact.model, a.artifact.manifest.model, 2.0, 1.0}, {b.artifact.model, b.artifact.manifest.model, 0.5, 3.0}},
      classes);
  EXPECT_EQ(ens.spec.family, "ensemble");
  artifact::Artifact art;
  art.manifest.labels = a.artifact.manifest.labels;
  art.manifest.model = ens.spec;
  art.preprocessors = {prep::make_ensemble_preprocessor({a.artifact.preprocessors[0], b.artifact.preprocessors[0]})};
  art.model = ens.model;
  // Both members read bag_indices/bag_offsets/bag_weights: each under its own prefix.
  const auto inputs = prep::combined_input_spec(art.preprocessors);
  EXPECT_NE(inputs.find("member0/bag_indices"), nullptr) << inputs.describe();
  EXPECT_NE(inputs.find("member1/bag_indices"), nullptr) << inputs.describe();
  EXPECT_EQ(inputs.find("bag_indices"), nullptr);
  EXPECT_EQ(prep::primary_tensor_name(inputs, "bag_indices"), "member0/bag_indices");

  const auto texts = val.texts;
  const auto la = artifact::Predictor(a.artifact).forward(artifact::Predictor(a.artifact).encode(val));
  const auto lb = artifact::Predictor(b.artifact).forward(artifact::Predictor(b.artifact).encode(val));
  const auto expected = 0.25 * torch::softmax(la.to(torch::kFloat64) / 2.0, 1) +
                        0.75 * torch::softmax(lb.to(torch::kFloat64) / 0.5, 1);
  const auto in_memory = artifact::Predictor(art).predict_proba(texts).to(torch::kFloat64);
  EXPECT_LT((in_memory - expected).abs().max().item<double>(), 1e-5);
  // The two members really differ (else the average would prove nothing).
  EXPECT_GT((torch::softmax(la, 1) - torch::softmax(lb, 1)).abs().max().item<double>(), 1e-3);

  const fs::path dir = fs::temp_directory_path() / ("kiln_ensemble_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  artifact::save_artifact(dir.string(), art.manifest, art.preprocessors, *art.model);
  EXPECT_TRUE(fs::exists(dir / "ensemble.member0-state.json"));  // the logreg member's vocabulary and idf
  const artifact::Predictor loaded(dir.string());
  EXPECT_EQ(loaded.manifest().model.family, "ensemble");
  EXPECT_EQ(loaded.manifest().model.params["members"][1]["temperature"], 0.5);
  const auto reloaded = loaded.predict_proba(texts).to(torch::kFloat64);
  EXPECT_LT((reloaded - in_memory).abs().max().item<double>(), 1e-6);
  fs::remove_all(dir);
}

TEST(Ensemble, BadSpecsAreNamed) {
  nn::InputSpec inputs;
  auto expect_config_error = [&](const nlohmann::json& params, const std::string& want) {
    try {
      (void)nn::make_model({"ensemble", params}, inputs, 3);
      FAIL() << "no error for " << params.dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  expect_config_error({{"members", {{{"family", "linear"}}}}}, "must list at least two members");
  expect_config_error({{"members", {{{"family", "linear"}}, {{"family", "ensemble"}}}}},
                      "an ensemble cannot be a member of an ensemble");
  expect_config_error({{"members", {{{"family", "linear"}, {"temperature", 0}}, {{"family", "linear"}}}}},
                      "model.params.members[0].temperature must be a number > 0");
  expect_config_error({{"members", {{{"family", "linear"}, {"lr", 1}}, {{"family", "linear"}}}}},
                      "model.params.members[0].lr is not a member setting");
  // Inputs without the member's tensors: the featurizer must be the ensemble featurizer.
  expect_config_error({{"members", {{{"family", "linear"}}, {{"family", "linear"}}}}},
                      "the featurizer must be the ensemble featurizer");
  try {
    (void)prep::make_preprocessor({{"type", "ensemble"}, {"members", {{{"type", "tfidf"}}}}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("an ensemble needs at least two member featurizers"), std::string::npos) << e.what();
  }
  try {
    (void)prep::make_preprocessor({{"type", "ensemble"}, {"members", {{{"type", "tfidf"}}, {{"type", "tfidf"}}}}, {"x", 1}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("featurizer.x is not an option of the ensemble featurizer"), std::string::npos) << e.what();
  }
}
