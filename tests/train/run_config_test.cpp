#include "kiln/train/run_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"
#include "kiln/core/yaml.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {
std::string config_error(const std::string& yaml) {
  train::RunConfig c = train::recommended_config();
  try {
    train::apply_config(core::parse_yaml(yaml, "run.yaml"), c, "run.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST(RunConfig, PresetsAreValid) {
  for (const char* fam : {"linear", "mlp", "embedbag"}) {
    auto c = train::preset_config(fam);
    EXPECT_EQ(c.model.family, fam);
    EXPECT_NO_THROW(train::validate(c.trainer)) << fam;
  }
  auto seed = train::preset_config("mlp");
  EXPECT_EQ(seed.featurizer["max_features"], 5000);
  EXPECT_EQ(seed.trainer.optimizer.kind, "adamw");
  EXPECT_EQ(seed.trainer.schedule.kind, "warmup_cosine");
}

TEST(RunConfig, YamlOverridesPresetKeyByKey) {
  train::RunConfig c = train::preset_config("mlp");
  train::apply_config(core::parse_yaml("featurizer: {max_features: 100}\nmodel: {params: {dropout: 0.1}}\n"
                                       "train: {epochs: 3, optimizer: {lr: 0.5}, loss: {kind: focal, focal_gamma: 1}}\n",
                                       "run.yaml"),
                      c, "run.yaml");
  EXPECT_EQ(c.featurizer["max_features"], 100);
  EXPECT_EQ(c.featurizer["type"], "tfidf");
  EXPECT_EQ(c.model.params["dropout"], 0.1);
  EXPECT_EQ(c.model.params["hidden"], nlohmann::json::array({512}));
  EXPECT_EQ(c.trainer.epochs, 3);
  EXPECT_DOUBLE_EQ(c.trainer.optimizer.lr, 0.5);
  EXPECT_EQ(c.trainer.loss.kind, "focal");
  EXPECT_DOUBLE_EQ(c.trainer.loss.focal_gamma, 1.0);
}

TEST(RunConfig, UnknownKeysAreNamedWithTheValidOnes) {
  auto msg = config_error("train: {epoch: 3}\n");
  EXPECT_NE(msg.find("run.yaml: unknown key 'train.epoch'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("epochs"), std::string::npos) << msg;
  msg = config_error("trian: {}\n");
  EXPECT_NE(msg.find("unknown key 'config.trian'"), std::string::npos) << msg;
  msg = config_error("train: {optimizer: {lr: fast}}\n");
  EXPECT_NE(msg.find("train.optimizer.lr has the wrong type"), std::string::npos) << msg;
}

TEST(RunConfig, RoundTripsThroughJson) {
  auto c = train::preset_config("embedbag");
  auto j = train::to_json(c);
  train::RunConfig d = train::recommended_config();
  j["model"].erase("family");
  j["model"]["family"] = "embedbag";
  train::apply_config(j, d, "json");
  EXPECT_EQ(train::to_json(d), train::to_json(c));
}

TEST(RunConfig, LoadsAFileOverItsFamilyPreset) {
  fs::path p = fs::temp_directory_path() / ("kiln_run_config_" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(p) << "model:\n  family: mlp\ntrain:\n  epochs: 2\n";
  auto c = train::load_run_config(p.string());
  EXPECT_EQ(c.model.family, "mlp");
  EXPECT_EQ(c.featurizer["max_features"], 5000);
  EXPECT_EQ(c.trainer.epochs, 2);
  fs::remove(p);
}

TEST(RunConfig, ShippedConfigsLoadAndValidate) {
  const fs::path dir = fs::path(KILN_TEST_DATA_DIR) / ".." / ".." / "configs";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".yaml") continue;
    // tune*.yaml are tuning configs (a run config plus a search space): tests/tune checks them.
    if (e.path().filename().string().rfind("tune", 0) == 0) continue;
    auto c = train::load_run_config(e.path().string());
    EXPECT_NO_THROW(train::validate(c.trainer)) << e.path();
    ++n;
  }
  EXPECT_GE(n, 3);
  auto rec = train::load_run_config((dir / "recommended.yaml").string());
  EXPECT_EQ(train::to_json(rec), train::to_json(train::recommended_config()))
      << "configs/recommended.yaml must describe recommended_config()";
}
