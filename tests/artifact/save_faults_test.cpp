// Every operation of save_artifact made to fail in turn: the artifact directory is always the
// complete old one or the complete new one (tests/lib/fault_env.h).
#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/artifact/artifact.h"
#include "kiln/artifact/profile.h"
#include "kiln/data/dataset.h"
#include "lib/fault_env.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kiln_artifact_faults_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

data::Dataset small_dataset() {
  data::Dataset ds;
  ds.texts = {"free money now",  "win a free prize", "meeting at noon", "lunch meeting today",
              "cheap pills free", "project meeting notes"};
  ds.labels = {"spam", "spam", "ham", "ham", "spam", "ham"};
  return ds;
}

// A fitted tfidf preprocessor and a linear model over it, with a fixed creation time so that two
// saves write the same bytes.
struct Unsaved {
  prep::Preprocessors preprocessors;
  std::shared_ptr<nn::Model> model;
  artifact::Manifest manifest;
};

Unsaved small_model(int seed, const std::string& created_at) {
  Unsaved u;
  std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor({{"type", "tfidf"}});
  pre->fit(small_dataset());
  u.preprocessors = {pre};
  torch::manual_seed(seed);
  nn::ModelSpec spec;
  spec.family = "linear";
  u.model = nn::make_model(spec, pre->input_spec(), 2);
  u.model->eval();
  u.manifest.labels = {"ham", "spam"};
  u.manifest.created_at = created_at;
  u.manifest.model = nn::resolve_spec(spec);
  u.manifest.data_profile = artifact::compute_data_profile(small_dataset(), *pre, pre->encode(small_dataset()));
  return u;
}

TEST(SaveArtifactFaults, FreshSaveIsWholeOrAbsent) {
  const fs::path root = fresh_dir("fresh");
  const fs::path dir = root / "model";
  Unsaved u = small_model(1, "2024-01-01T00:00:00Z");
  const data::Dataset heldout = small_dataset();
  const long n = faults::check_every_failure(
      root, [&] { fs::remove_all(dir); },
      [&] { artifact::save_artifact(dir.string(), u.manifest, u.preprocessors, *u.model, &heldout); });
  // mkdir, then per file (tfidf state, weights, heldout, kiln.json), each under its own name in the
  // new folder: open, write, fsync, close; then fsync of the new folder, rename, fsync of the parent.
  EXPECT_GE(n, 1 + 4 * 4 + 3);
  RecordProperty("operations", static_cast<int>(n));
  std::cout << "save_artifact (fresh): " << n << " operations, each failed in turn\n";
  EXPECT_NO_THROW((void)artifact::load_artifact(dir.string()));
  fs::remove_all(root);
}

TEST(SaveArtifactFaults, ReplacingKeepsTheOldArtifactWholeUntilTheNewOneIsIn) {
  const fs::path root = fresh_dir("replace");
  const fs::path dir = root / "model";
  Unsaved old_model = small_model(1, "2024-01-01T00:00:00Z");
  Unsaved new_model = small_model(2, "2024-02-02T00:00:00Z");
  const data::Dataset heldout = small_dataset();
  const long n = faults::check_every_failure(
      root,
      [&] {
        fs::remove_all(dir);
        artifact::save_artifact(dir.string(), old_model.manifest, old_model.preprocessors, *old_model.model);
      },
      [&] {
        artifact::save_artifact(dir.string(), new_model.manifest, new_model.preprocessors, *new_model.model,
                                &heldout);
      });
  EXPECT_GE(n, 1 + 4 * 4 + 3);
  std::cout << "save_artifact (replace): " << n << " operations, each failed in turn\n";
  EXPECT_EQ(artifact::load_artifact(dir.string()).manifest.created_at, "2024-02-02T00:00:00Z");
  fs::remove_all(root);
}

}  // namespace
