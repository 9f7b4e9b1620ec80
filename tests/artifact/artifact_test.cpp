#include "kiln/artifact/artifact.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "kiln/artifact/predictor.h"
#include "kiln/artifact/profile.h"
#include "kiln/core/error.h"
#include "kiln/data/dataset.h"
#include "kiln/data/image.h"
#include "kiln/nn/input_spec.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

const std::vector<std::string> kTexts = {"free money now",  "win a free prize", "meeting at noon", "lunch meeting today",
                                         "cheap pills free", "project meeting notes"};
const std::vector<std::string> kLabels = {"spam", "spam", "ham", "ham", "spam", "ham"};

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kiln_artifact_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

data::Dataset small_dataset() {
  data::Dataset ds;
  ds.texts = kTexts;
  ds.labels = kLabels;
  return ds;
}

// A fitted tfidf preprocessor and a linear model over it, not yet saved.
struct Unsaved {
  prep::Preprocessors preprocessors;
  std::shared_ptr<nn::Model> model;
  artifact::Manifest manifest;
};

Unsaved small_model(const std::string& family = "linear") {
  Unsaved u;
  std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor({{"type", "tfidf"}});
  pre->fit(small_dataset());
  u.preprocessors = {pre};
  torch::manual_seed(1);
  nn::ModelSpec spec;
  spec.family = family;
  u.model = nn::make_model(spec, pre->input_spec(), 2);
  u.model->eval();
  u.manifest.labels = {"ham", "spam"};
  u.manifest.model = nn::resolve_spec(spec);
  u.manifest.data_profile = artifact::compute_data_profile(small_dataset(), *pre, pre->encode(small_dataset()));
  return u;
}

// Saves a small artifact under root/model and returns its path.
fs::path save_small(const fs::path& root, const data::Dataset* heldout = nullptr) {
  auto u = small_model();
  fs::path dir = root / "model";
  artifact::save_artifact(dir.string(), u.manifest, u.preprocessors, *u.model, heldout);
  return dir;
}

std::string load_error(const fs::path& dir) {
  try {
    (void)artifact::load_artifact(dir.string());
  } catch (const ArtifactError& e) {
    return e.what();
  }
  return "(no error)";
}

void rewrite_json(const fs::path& file, const std::function<void(nlohmann::json&)>& edit) {
  std::ifstream in(file);
  nlohmann::json j = nlohmann::json::parse(in);
  edit(j);
  std::ofstream(file) << j.dump(2);
}

}  // namespace

TEST(Artifact, RoundTripPredictsWhatTheModelDidBeforeSaving) {
  for (const char* family : {"linear", "mlp", "embedbag"}) {
    auto root = fresh_dir(std::string("roundtrip_") + family);
    auto u = small_model(family);
    // Before saving: the in-memory model's probabilities and pooled representation.
    const auto batch = prep::encode_all(u.preprocessors, small_dataset());
    const auto before = nn::predict_proba(*u.model, batch);
    torch::Tensor before_embed;
    {
      torch::InferenceMode guard;
      before_embed = u.model->embed(batch);
    }
    const fs::path dir = root / "model";
    artifact::save_artifact(dir.string(), u.manifest, u.preprocessors, *u.model);
    EXPECT_TRUE(fs::exists(dir / "kiln.json"));
    EXPECT_TRUE(fs::exists(dir / "model.safetensors"));
    EXPECT_TRUE(fs::exists(dir / "tfidf.json"));
    artifact::Predictor loaded(dir.string());
    EXPECT_TRUE(torch::equal(loaded.predict_proba(kTexts), before)) << family;
    EXPECT_TRUE(torch::equal(loaded.embed(loaded.encode(small_dataset())), before_embed)) << family;
  }
  auto root = fresh_dir("roundtrip");
  auto dir = save_small(root);
  artifact::Predictor a(dir.string());
  EXPECT_EQ(a.manifest().labels, (std::vector<std::string>{"ham", "spam"}));
  EXPECT_EQ(a.manifest().format_version, artifact::kFormatVersion);
  EXPECT_TRUE(a.manifest().data_profile.contains("label_distribution"));
  // No temporary siblings are left behind.
  int entries = 0;
  for (auto& e : fs::directory_iterator(root)) (void)e, ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(Artifact, PredictorIsThreadSafe) {
  auto dir = save_small(fresh_dir("threads"));
  artifact::Predictor p(dir.string());
  auto expected = p.predict(kTexts, 2);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&]() {
      for (int i = 0; i < 20; ++i) {
        auto got = p.predict(kTexts, 2);
        for (std::size_t k = 0; k < got.size(); ++k) {
          if (got[k].label != expected[k].label || got[k].probability != expected[k].probability) ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(expected[0].top_k.size(), 2u);
  EXPECT_GE(expected[0].top_k[0].second, expected[0].top_k[1].second);
}

TEST(Artifact, MissingDirectoryAndNonArtifact) {
  auto root = fresh_dir("missing");
  EXPECT_NE(load_error(root / "nope").find("artifact directory not found"), std::string::npos);
  EXPECT_NE(load_error(root).find("kiln.json: missing, and so is"), std::string::npos)
      << load_error(root);
  std::ofstream(root / "file") << "x";
  EXPECT_NE(load_error(root / "file").find("is a file"), std::string::npos);
}

TEST(Artifact, NewerFormatIsRejectedWithUpgradeHint) {
  auto dir = save_small(fresh_dir("newer"));
  rewrite_json(dir / "kiln.json", [](nlohmann::json& j) { j["format_version"] = 99; });
  auto msg = load_error(dir);
  EXPECT_NE(msg.find("artifact format 99 is newer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("upgrade kiln"), std::string::npos) << msg;
}

TEST(Artifact, CorruptManifestNamesTheFile) {
  auto dir = save_small(fresh_dir("corrupt_manifest"));
  std::ofstream(dir / "kiln.json") << "{\"format_version\": 1, \"labels\": [";
  auto msg = load_error(dir);
  EXPECT_NE(msg.find("kiln.json: not valid JSON"), std::string::npos) << msg;
}

TEST(Artifact, TruncatedWeightsAreAnError) {
  auto dir = save_small(fresh_dir("truncated"));
  auto size = fs::file_size(dir / "model.safetensors");
  fs::resize_file(dir / "model.safetensors", size - 7);
  auto msg = load_error(dir);
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(Artifact, WeightsOfAnotherShapeNameTheTensor) {
  auto dir = save_small(fresh_dir("shape"));
  rewrite_json(dir / "kiln.json", [](nlohmann::json& j) { j["labels"] = {"a", "b", "c"}; });
  auto msg = load_error(dir);
  EXPECT_NE(msg.find("has shape"), std::string::npos) << msg;
  EXPECT_NE(msg.find("but the model expects"), std::string::npos) << msg;
}

TEST(Artifact, MissingPreprocessorState) {
  auto dir = save_small(fresh_dir("nofeat"));
  fs::remove(dir / "tfidf.json");
  auto msg = load_error(dir);
  EXPECT_NE(msg.find("tfidf.json: missing; the artifact is incomplete"), std::string::npos) << msg;
}

TEST(Artifact, ManifestOfFormat2) {
  auto dir = save_small(fresh_dir("format2"));
  std::ifstream in(dir / "kiln.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["format_version"], 2);
  EXPECT_EQ(j["task"], "text-classification");
  EXPECT_EQ(j["preprocessors"][0]["type"], "tfidf");
  EXPECT_EQ(j["preprocessors"][0]["files"]["state"], "tfidf.json");
  EXPECT_EQ(j["preprocessors"][0]["options"]["norm"], "l2");
  EXPECT_EQ(j["inputs"][0]["name"], "bag_indices");
  EXPECT_EQ(j["inputs"][0]["shape"], nlohmann::json::array({"nnz"}));
  EXPECT_GE(j["inputs"][0]["vocab_size"].get<int64_t>(), 1);
  EXPECT_EQ(j["variants"], nlohmann::json::object());
  EXPECT_TRUE(j["heldout"].is_null());
  EXPECT_FALSE(j.contains("featurizer"));
  EXPECT_FALSE(j.contains("input_dim"));
}

TEST(Artifact, InputsThatDisagreeWithThePreprocessorsAreAnError) {
  auto dir = save_small(fresh_dir("inputs"));
  rewrite_json(dir / "kiln.json", [](nlohmann::json& j) { j["inputs"][0]["vocab_size"] = 3; });
  auto msg = load_error(dir);
  EXPECT_NE(msg.find("the preprocessors produce bag_indices int64 [nnz] (vocab "), std::string::npos) << msg;
  EXPECT_NE(msg.find("but kiln.json says the inputs are bag_indices int64 [nnz] (vocab 3)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("the files come from different models"), std::string::npos) << msg;
}

TEST(Artifact, UnknownPreprocessorTypeAndTaskAreNamed) {
  auto dir = save_small(fresh_dir("unknown_type"));
  rewrite_json(dir / "kiln.json", [](nlohmann::json& j) { j["preprocessors"][0]["type"] = "sentencepiece"; });
  auto msg = load_error(dir);
  EXPECT_NE(msg.find("preprocessor type 'sentencepiece' is unknown to this Kiln (known: ensemble, hashed_ngrams, image, tfidf"),
            std::string::npos)
      << msg;
  auto dir2 = save_small(fresh_dir("unknown_task"));
  rewrite_json(dir2 / "kiln.json", [](nlohmann::json& j) { j["task"] = "regression"; });
  msg = load_error(dir2);
  EXPECT_NE(msg.find("task 'regression' is not supported (expected one of: text-classification, image-classification, "
                     "multimodal-classification)"),
            std::string::npos)
      << msg;
}

TEST(Artifact, HeldOutSampleTravelsWithTheArtifact) {
  auto ds = small_dataset();
  auto dir = save_small(fresh_dir("heldout"), &ds);
  EXPECT_TRUE(fs::exists(dir / "heldout.jsonl"));
  const auto back = artifact::load_heldout(dir.string());
  EXPECT_EQ(back.texts, ds.texts);
  EXPECT_EQ(back.labels, ds.labels);
  EXPECT_EQ(artifact::load_artifact(dir.string()).manifest.heldout.examples, 6);
  std::ofstream(dir / "heldout.jsonl", std::ios::app) << "{\"text\": 3}\n";
  try {
    (void)artifact::load_heldout(dir.string());
    ADD_FAILURE() << "expected ArtifactError";
  } catch (const ArtifactError& e) {
    EXPECT_NE(std::string(e.what()).find("heldout.jsonl:7: malformed held-out example"), std::string::npos) << e.what();
  }
  // Without one, there is none.
  EXPECT_EQ(artifact::load_heldout(save_small(fresh_dir("no_heldout")).string()).size(), 0u);
}

// Held-out images keep pointing at their files: the data set's paths are relative to its file's
// folder, heldout.jsonl's to the artifact directory (load_heldout's base_dir).
TEST(Artifact, HeldOutImagePathsResolveFromTheArtifact) {
  auto ds = small_dataset();
  const fs::path data_dir = fresh_dir("heldout_images_data");
  ds.base_dir = data_dir.string();
  for (std::size_t i = 0; i < ds.size(); ++i) {
    ds.images.push_back(data::ImageRef{i == 0 ? (data_dir / "abs.png").string() : "img/" + std::to_string(i) + ".png", {}});
  }
  auto dir = save_small(fresh_dir("heldout_images"), &ds);
  const auto back = artifact::load_heldout(dir.string());
  ASSERT_EQ(back.images.size(), ds.size());
  for (std::size_t i = 0; i < ds.size(); ++i) {
    const auto want = fs::absolute(data::resolve_image_path(ds.base_dir, ds.images[i].path)).lexically_normal();
    const auto got = fs::absolute(data::resolve_image_path(back.base_dir, back.images[i].path)).lexically_normal();
    EXPECT_EQ(got, want) << "row " << i << " stored as " << back.images[i].path;
  }
}

TEST(Artifact, PredictorRefusesAVariantItDoesNotKnow) {
  auto dir = save_small(fresh_dir("variants"));
  artifact::PredictorOptions o;
  o.variant = "int8";
  try {
    artifact::Predictor p(dir.string(), o);
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("variant 'int8' is not in artifact"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(it has: none); make it with kiln optimize"), std::string::npos) << e.what();
  }
  rewrite_json(dir / "kiln.json", [](nlohmann::json& j) {
    j["variants"]["int8"] = {{"file", "variants/int8.safetensors"}, {"ops", {"quantized_linear_int8"}}};
  });
  try {
    artifact::Predictor p(dir.string(), o);
    ADD_FAILURE() << "expected an error";
  } catch (const ArtifactError& e) {
    EXPECT_NE(std::string(e.what()).find("variant 'int8' of artifact"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("needs the op 'quantized_linear_int8', which this Kiln does not know"),
              std::string::npos)
        << e.what();
  }
  // Without --variant the fp32 weights still serve.
  EXPECT_EQ(artifact::Predictor(dir.string()).predict(kTexts).size(), kTexts.size());
}

TEST(Artifact, PredictorBatchesGiveTheSameProbabilitiesAsOneAtATime) {
  auto dir = save_small(fresh_dir("batches"));
  artifact::Predictor p(dir.string());
  std::vector<std::string> texts;
  for (int i = 0; i < 1000; ++i) texts.push_back(kTexts[static_cast<std::size_t>(i) % kTexts.size()] + " " + std::to_string(i % 7));
  std::vector<torch::Tensor> singles;
  for (const auto& t : texts) singles.push_back(p.predict_proba(std::vector<std::string>{t}));
  for (std::size_t n : {255u, 256u, 257u, 1000u}) {
    const std::vector<std::string> some(texts.begin(), texts.begin() + static_cast<std::ptrdiff_t>(n));
    const auto all = p.predict_proba(some);
    ASSERT_EQ(all.size(0), static_cast<int64_t>(n));
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_LE((all[static_cast<int64_t>(i)] - singles[i][0]).abs().max().item<float>(), 1e-6f) << n << " row " << i;
    }
  }
}

TEST(Artifact, PredictorForwardGivesGradientsWhenAsked) {
  auto dir = save_small(fresh_dir("gradients"));
  artifact::Predictor p(dir.string());
  auto batch = p.encode(small_dataset());
  auto weights = batch.at(nn::kBagWeights).clone().requires_grad_(true);
  batch.set(nn::kBagWeights, weights);
  const auto logits = p.forward(batch, /*gradients=*/true);
  logits.select(1, 1).sum().backward();
  ASSERT_TRUE(weights.grad().defined());
  EXPECT_GT(weights.grad().abs().sum().item<float>(), 0.0f);
  // Without gradients the pass runs under InferenceMode.
  EXPECT_TRUE(p.forward(p.encode(small_dataset())).is_inference());
}

TEST(Artifact, TemperatureInTheManifestScalesTheProbabilities) {
  auto u = small_model("mlp");
  u.manifest.calibration = {{"method", "temperature"}, {"temperature", 2.5}};
  const auto dir = fresh_dir("calibrated") / "model";
  artifact::save_artifact(dir.string(), u.manifest, u.preprocessors, *u.model);
  const artifact::Predictor p(dir.string());
  EXPECT_DOUBLE_EQ(p.manifest().temperature(), 2.5);
  const auto logits = p.forward(p.encode(small_dataset()));
  EXPECT_TRUE(torch::allclose(p.predict_proba(kTexts), torch::softmax(logits / 2.5, 1), 1e-6, 1e-7));
  EXPECT_FALSE(torch::allclose(p.predict_proba(kTexts), torch::softmax(logits, 1), 1e-6, 1e-7));

  rewrite_json(dir / "kiln.json", [](nlohmann::json& j) { j["calibration"]["temperature"] = -1; });
  EXPECT_NE(load_error(dir).find("\"calibration\".temperature must be a finite number > 0, got -1"), std::string::npos)
      << load_error(dir);
  rewrite_json(dir / "kiln.json", [](nlohmann::json& j) { j["calibration"] = {{"method", "platt"}}; });
  EXPECT_NE(load_error(dir).find("\"calibration\".method 'platt' is unknown to this Kiln (known: temperature, none)"),
            std::string::npos)
      << load_error(dir);
}

// Artifacts written by Kiln's format 1 (tests/fixtures/format1, made at commit 70dbd32) load and
// predict what that Kiln predicted.
TEST(Artifact, Format1ArtifactsPredictAsTheyDid) {
  const fs::path root = KILN_FIXTURES_DIR "/format1";
  data::Dataset inputs;
  {
    data::LoadOptions lo;
    inputs = data::load_labeled((root / "inputs.csv").string(), lo, nullptr);
  }
  for (const char* family : {"linear", "mlp", "embedbag"}) {
    const artifact::Predictor p((root / family).string());
    EXPECT_EQ(p.manifest().format_version, 1) << family;
    EXPECT_EQ(p.manifest().model.family, family);
    const auto probs = p.predict_proba(inputs);
    std::ifstream expected(root / family / "expected_predictions.jsonl");
    std::string line;
    int64_t row = 0;
    float worst = 0;
    while (std::getline(expected, line)) {
      const auto j = nlohmann::json::parse(line);
      for (const auto& top : j["top_k"]) {
        const auto& labels = p.labels();
        const auto id = std::find(labels.begin(), labels.end(), top["label"].get<std::string>()) - labels.begin();
        worst = std::max(worst, std::abs(probs[row][id].item<float>() - top["probability"].get<float>()));
      }
      ++row;
    }
    EXPECT_EQ(row, probs.size(0)) << family;
    EXPECT_LE(worst, 1e-6f) << family;
  }
}
