#include "kiln/train/run_config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"
#include "kiln/core/yaml.h"
#include "kiln/nn/model.h"
#include "kiln/train/trainer.h"

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

std::string preset_error(const std::string& name) {
  try {
    (void)train::preset_config(name);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

class ZeroModel : public nn::Model {
 public:
  explicit ZeroModel(int64_t num_classes) : Model(num_classes) {}
  torch::Tensor embed(const nn::Batch& batch) override { return torch::zeros({batch.size(), 1}); }
  torch::Tensor classify(const torch::Tensor& pooled) override { return torch::zeros({pooled.size(0), num_classes()}); }
  int64_t embedding_dim() const override { return 1; }
};

void register_zero_family(const std::string& name) {
  nn::ModelFamily family;
  family.name = name;
  family.description = "zero logits (test only)";
  family.default_params = nlohmann::json::object();
  family.factory = [](const nlohmann::json&, const nn::InputSpec&, int64_t num_classes) {
    return std::make_shared<ZeroModel>(num_classes);
  };
  nn::register_model_family(family);
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
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

// Every built-in preset reads back what to_json writes (selected_config.yaml is to_json of the
// candidates: the mlp preset's unset weight_decay is written as null and was refused on reading).
TEST(RunConfig, EveryPresetRoundTripsThroughJson) {
  for (const char* name : {"linear", "mlp", "embedbag", "fasttext", "logreg", "cnn", "multimodal", "bert"}) {
    const auto c = train::preset_config(name);
    const auto j = train::to_json(c);
    train::RunConfig d = train::preset_config(name);
    d.trainer.optimizer.weight_decay = 0.5;  // a value the read must replace (or clear)
    ASSERT_NO_THROW(train::apply_config(j, d, "json")) << name;
    EXPECT_EQ(train::to_json(d), j) << name;
  }
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

TEST(RunConfig, UnknownModelIsAnErrorListingTheRegisteredFamilies) {
  const auto msg = preset_error("forest");
  EXPECT_NE(msg.find("model 'forest' is not a registered model family; known families: "), std::string::npos) << msg;
  std::string families;
  for (const auto& n : nn::model_family_names()) families += (families.empty() ? "" : ", ") + n;
  EXPECT_NE(msg.find("known families: " + families), std::string::npos) << msg;
  for (const char* fam : {"embedbag", "linear", "mlp"}) EXPECT_NE(msg.find(fam), std::string::npos) << msg;
  EXPECT_NE(msg.find("nn::register_model_family"), std::string::npos) << msg;
}

TEST(RunConfig, RegisteredFamilyWithoutPresetGetsTheRecommendedConfig) {
  register_zero_family("test_zero_family");
  EXPECT_TRUE(contains(train::model_choices(), "test_zero_family"));
  EXPECT_FALSE(contains(train::preset_names(), "test_zero_family"));
  const auto c = train::preset_config("test_zero_family");
  EXPECT_EQ(c.model.family, "test_zero_family");
  EXPECT_EQ(c.model.params, nlohmann::json::object());
  auto expected = train::recommended_config();
  expected.model = c.model;
  EXPECT_EQ(train::to_json(c), train::to_json(expected));
  // A new family is listed by the next unknown-model error, too.
  EXPECT_NE(preset_error("forest").find("test_zero_family"), std::string::npos) << preset_error("forest");

  // A config file naming the family starts from that config as well.
  fs::path p = fs::temp_directory_path() / ("kiln_run_config_family_" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(p) << "model: {family: test_zero_family}\ntrain: {epochs: 2}\n";
  const auto loaded = train::load_run_config(p.string());
  fs::remove(p);
  EXPECT_EQ(loaded.model.family, "test_zero_family");
  EXPECT_EQ(loaded.featurizer, expected.featurizer);
  EXPECT_EQ(loaded.trainer.epochs, 2);
}

TEST(RunConfig, RegisteredPresetIsServedByName) {
  auto small = train::preset_config("mlp");
  small.model.params["hidden"] = {32};
  small.trainer.epochs = 4;
  train::register_preset("test_small_mlp", small);
  EXPECT_TRUE(contains(train::preset_names(), "test_small_mlp"));
  EXPECT_TRUE(contains(train::model_choices(), "test_small_mlp"));
  EXPECT_EQ(train::to_json(train::preset_config("test_small_mlp")), train::to_json(small));
  // Presets that are not families are listed apart in the unknown-model error.
  EXPECT_NE(preset_error("forest").find("; presets: fasttext, logreg, test_small_mlp"), std::string::npos) << preset_error("forest");
  // Built-ins stay as they were; the recommended config is the built-in linear preset.
  EXPECT_EQ(train::preset_config("mlp").model.params["hidden"], nlohmann::json::array({512}));
  EXPECT_EQ(train::to_json(train::recommended_config()), train::to_json(train::preset_config("linear")));

  try {
    train::register_preset("", small);
    FAIL() << "an empty preset name was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("register_preset: preset name must not be empty"), std::string::npos)
        << e.what();
  }
}

TEST(RunConfig, StopAfterEpochsIsATrainKey) {
  train::RunConfig c = train::recommended_config();
  EXPECT_EQ(c.trainer.stop_after_epochs, 0);
  train::apply_config(core::parse_yaml("train: {epochs: 6, stop_after_epochs: 2}\n", "run.yaml"), c, "run.yaml");
  EXPECT_EQ(c.trainer.stop_after_epochs, 2);
  EXPECT_NO_THROW(train::validate(c.trainer));

  train::apply_config(core::parse_yaml("train: {stop_after_epochs: -1}\n", "run.yaml"), c, "run.yaml");
  try {
    train::validate(c.trainer);
    FAIL() << "stop_after_epochs -1 was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.stop_after_epochs must be >= 0 (0 = no limit), got -1"),
              std::string::npos)
        << e.what();
  }
  const auto msg = config_error("train: {stop_after_epochs: soon}\n");
  EXPECT_NE(msg.find("run.yaml: train.stop_after_epochs has the wrong type"), std::string::npos) << msg;
  // It describes one invocation, not the run: the artifact's training config leaves it out.
  EXPECT_FALSE(train::to_json(c)["train"].contains("stop_after_epochs"));
}
