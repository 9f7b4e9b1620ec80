#include "kiln/artifact/artifact.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "kiln/artifact/predictor.h"
#include "kiln/artifact/profile.h"
#include "kiln/core/error.h"

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

// Saves a small artifact under root/model and returns its path.
fs::path save_small(const fs::path& root) {
  auto feat = text::make_featurizer({{"type", "tfidf"}});
  feat->fit(kTexts);
  auto x = feat->transform(kTexts);
  torch::manual_seed(1);
  nn::ModelSpec spec;
  spec.family = "linear";
  auto model = nn::make_model(spec, feat->dim(), 2);
  artifact::Manifest m;
  m.labels = {"ham", "spam"};
  m.model = nn::resolve_spec(spec);
  m.data_profile = artifact::compute_data_profile(kTexts, kLabels, *feat, x);
  fs::path dir = root / "model";
  artifact::save_artifact(dir.string(), m, *feat, *model);
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

TEST(Artifact, RoundTripGivesIdenticalPredictions) {
  auto root = fresh_dir("roundtrip");
  auto dir = save_small(root);
  EXPECT_TRUE(fs::exists(dir / "kiln.json"));
  EXPECT_TRUE(fs::exists(dir / "model.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "featurizer.json"));
  artifact::Predictor a(dir.string());
  artifact::Predictor b(dir.string());
  auto pa = a.predict_proba(kTexts), pb = b.predict_proba(kTexts);
  EXPECT_TRUE(torch::equal(pa, pb));
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

TEST(Artifact, MissingFeaturizerState) {
  auto dir = save_small(fresh_dir("nofeat"));
  fs::remove(dir / "featurizer.json");
  auto msg = load_error(dir);
  EXPECT_NE(msg.find("featurizer.json: missing"), std::string::npos) << msg;
}
