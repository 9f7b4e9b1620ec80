#include "kiln/pipeline/pipeline.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "kiln/core/error.h"
#include "topic_data.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

using pipeline_test::topics;

train::RunConfig small_config() {
  train::RunConfig c = train::preset_config("linear");
  c.featurizer = {{"type", "tfidf"}};
  c.trainer.epochs = 3;
  c.trainer.batch_size = 16;
  return c;
}

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kiln_pipeline_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

float max_weight_change(nn::Model& a, nn::Model& b) {
  float worst = 0;
  auto pb = b.named_parameters();
  for (const auto& p : a.named_parameters()) {
    worst = std::max(worst, (p.value() - pb[p.key()]).abs().max().item<float>());
  }
  return worst;
}

TEST(Pipeline, TestMetricsAreWhatEvaluateComputesOnTheSavedArtifact) {
  const auto train = topics(300, 1), val = topics(60, 2), test = topics(80, 3);
  const auto r = pipeline::run_pipeline(small_config(), train, &val, &test);
  ASSERT_TRUE(r.has_test);
  const auto dir = fresh_dir("evaluate");
  pipeline::save(r, dir.string());
  const artifact::Predictor loaded(dir.string());
  const auto e = pipeline::evaluate(loaded, test, "test set");
  EXPECT_EQ(train::to_json(e.metrics, loaded.labels()), train::to_json(r.test_metrics, loaded.labels()));
  EXPECT_EQ(r.artifact.manifest.metrics["test"], train::to_json(e.metrics, loaded.labels()));
  // The validation split's sample travels in the artifact.
  EXPECT_EQ(artifact::load_heldout(dir.string()).texts, val.texts);
  fs::remove_all(dir);
}

TEST(Pipeline, TemperatureIsFittedOnTheValidationSplitWhenAsked) {
  const auto train = topics(300, 1), val = topics(80, 2);
  const auto calibrated = pipeline::run_pipeline(small_config(), train, &val, nullptr);
  const auto& cal = calibrated.artifact.manifest.calibration;
  ASSERT_EQ(cal["method"], "temperature");
  EXPECT_EQ(cal["examples"], 80);
  EXPECT_LE(cal["nll_after"].get<double>(), cal["nll_before"].get<double>());
  EXPECT_DOUBLE_EQ(calibrated.artifact.manifest.temperature(), cal["temperature"].get<double>());
  // The validation metrics are the calibrated model's: same argmax, the fitted log loss.
  EXPECT_NEAR(*calibrated.val_metrics.log_loss, cal["nll_after"].get<double>(), 1e-5);

  auto config = small_config();
  config.trainer.calibrate = "none";
  const auto plain = pipeline::run_pipeline(config, train, &val, nullptr);
  EXPECT_EQ(plain.artifact.manifest.calibration["method"], "none");
  EXPECT_EQ(plain.val_metrics.accuracy, calibrated.val_metrics.accuracy);
  EXPECT_NEAR(*plain.val_metrics.log_loss, cal["nll_before"].get<double>(), 1e-5);
  // Without validation rows there is nothing to fit.
  EXPECT_EQ(pipeline::run_pipeline(small_config(), train, nullptr, nullptr).artifact.manifest.calibration["method"],
            "none");
  config.trainer.calibrate = "platt";
  try {
    (void)pipeline::run_pipeline(config, train, &val, nullptr);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.calibrate must be temperature or none, got 'platt'"), std::string::npos)
        << e.what();
  }
}

TEST(Pipeline, WarmStartKeepsThePreprocessorsAndStartsFromTheParentsWeights) {
  const auto train = topics(300, 1), val = topics(60, 2);
  const auto parent_run = pipeline::run_pipeline(small_config(), train, &val, nullptr);
  const auto dir = fresh_dir("parent");
  pipeline::save(parent_run, dir.string());
  const auto parent = artifact::load_artifact(dir.string());

  // New examples whose words the parent's vocabulary has never seen stay unseen: no refit.
  auto more = topics(120, 9);
  for (auto& t : more.texts) t += " zeppelin";
  auto config = small_config();
  config.trainer.optimizer.lr = 1e-9;
  config.trainer.epochs = 1;
  const auto still = pipeline::warm_start(parent, config, more, nullptr, nullptr);
  EXPECT_EQ(still.artifact.preprocessors.front()->state_files(), parent.preprocessors.front()->state_files());
  EXPECT_EQ(still.artifact.manifest.inputs.describe(), parent.manifest.inputs.describe());
  EXPECT_LT(max_weight_change(*still.artifact.model, *parent.model), 1e-6f);
  EXPECT_EQ(still.artifact.manifest.lineage["parent"]["dir"], parent.dir);
  EXPECT_TRUE(still.artifact.manifest.lineage["warm_start"].get<bool>());

  // With a real learning rate it moves from there, and fits the new data at least as well.
  config.trainer.optimizer.lr = 0.05;
  config.trainer.epochs = 3;
  const auto moved = pipeline::warm_start(parent, config, more, nullptr, nullptr);
  EXPECT_GT(max_weight_change(*moved.artifact.model, *parent.model), 1e-4f);
  const artifact::Predictor before(parent), after(moved.artifact);
  EXPECT_GE(pipeline::evaluate(after, more, "new").metrics.accuracy, pipeline::evaluate(before, more, "new").metrics.accuracy);
  fs::remove_all(dir);
}

TEST(Pipeline, WarmStartSkipsLabelsTheParentDoesNotKnow) {
  const auto train = topics(200, 1);
  const auto parent_run = pipeline::run_pipeline(small_config(), train, nullptr, nullptr);
  const auto mixed = topics(100, 4, {"astro", "music"});
  const auto r = pipeline::warm_start(parent_run.artifact, small_config(), mixed, nullptr, nullptr);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings.front().find("training set: skipped rows whose label the model does not know: music ("),
            std::string::npos)
      << r.warnings.front();
  try {
    (void)pipeline::warm_start(parent_run.artifact, small_config(), topics(20, 5, {"music"}), nullptr, nullptr);
    ADD_FAILURE() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("warm start: no training row has a label the model knows"), std::string::npos)
        << e.what();
  }
}

TEST(Pipeline, EvaluateNamesFilesWithNoKnownLabel) {
  const auto r = pipeline::run_pipeline(small_config(), topics(100, 1), nullptr, nullptr);
  const artifact::Predictor p(r.artifact);
  try {
    (void)pipeline::evaluate(p, topics(10, 2, {"music"}), "other.csv");
    ADD_FAILURE() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("other.csv: no row has a label the model knows (3 labels, e.g. 'astro')"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
