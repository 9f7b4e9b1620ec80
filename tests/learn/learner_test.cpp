#include "kiln/learn/learner.h"

#include <gtest/gtest.h>

#include <fstream>

#include "kiln/core/error.h"
#include "learn_fixtures.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

std::vector<learn::FeedbackItem> feedback(const data::Dataset& ds, int first_line = 1) {
  std::vector<learn::FeedbackItem> out;
  for (std::size_t i = 0; i < ds.size(); ++i) {
    out.push_back({ds.example(i), "", "feedback.jsonl:" + std::to_string(first_line + i)});
  }
  return out;
}

fs::path trained_artifact(const std::string& name) {
  const auto dir = learn_test::fresh_dir(name);
  auto config = learn_test::small_config();
  const auto train = learn_test::topics(200, 1), val = learn_test::topics(60, 2);
  pipeline::save(pipeline::run_pipeline(config, train, &val, nullptr), (dir / "model").string());
  return dir;
}

std::vector<nlohmann::json> curve(const fs::path& out) {
  std::vector<nlohmann::json> records;
  std::ifstream in(out / "curve.jsonl");
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  return records;
}

learn::LearnOptions options() {
  learn::LearnOptions o;
  o.update_every = 60;
  o.gate_fraction = 0.25;
  o.buffer.capacity = 200;
  o.buffer.batch_size = 16;
  o.update.allow_new_labels = true;
  o.update.epochs = 3;
  return o;
}

}  // namespace

// A stream that brings a new class: updates are gated, the promoted version is a complete artifact
// with its lineage and the held-out sample, the curve records every update, and reopening the state
// directory resumes where the run stopped.
TEST(Learner, PromotesVersionsWithLineageAndResumes) {
  const auto dir = trained_artifact("promote");
  const auto out = dir / "learn";
  auto stream = learn_test::topics(300, 11, {"astro", "cook", "sail", "music"});
  {
    learn::Learner l((dir / "model").string(), out.string(), options());
    l.observe(feedback(stream));
    const auto s = l.finish();
    EXPECT_EQ(s.items, 300);
    EXPECT_GE(s.updates, 3);
    ASSERT_GE(s.promoted, 1);
    EXPECT_EQ(s.version, "v" + std::string(4 - std::to_string(s.promoted).size(), '0') + std::to_string(s.promoted));
    EXPECT_EQ(l.served().manifest.labels.back(), "music");
  }
  const auto v1 = artifact::load_artifact((out / "versions" / "v0001").string());
  EXPECT_EQ(v1.manifest.lineage["parent_version"], "original");
  EXPECT_GT(v1.manifest.lineage["items_seen"].get<int64_t>(), 0);
  EXPECT_EQ(artifact::load_heldout((out / "versions" / "v0001").string()).size(), 60u);
  const auto records = curve(out);
  int updates = 0;
  for (const auto& r : records) {
    if (r["event"] == "update") {
      ++updates;
      EXPECT_TRUE(r.contains("gate")) << r.dump();
      EXPECT_TRUE(r.contains("online_accuracy"));
    }
  }
  EXPECT_GE(updates, 3);
  EXPECT_EQ(records.back()["event"], "end");
  (void)learn::ReplayBuffer::load((out / "buffer.json").string());

  learn::Learner again((dir / "model").string(), out.string(), options());
  EXPECT_EQ(again.summary().items, 300);
  EXPECT_EQ(again.served().manifest.labels.size(), 4u);
  fs::remove_all(dir);
}

TEST(Learner, UnknownLabelNamesTheLineAndTheFlag) {
  const auto dir = trained_artifact("unknown");
  auto o = options();
  o.update.allow_new_labels = false;
  learn::Learner l((dir / "model").string(), (dir / "learn").string(), o);
  auto stream = learn_test::topics(10, 3);
  stream.labels[4] = "music";
  try {
    l.observe(feedback(stream));
    ADD_FAILURE() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("feedback.jsonl:5: label 'music' is not one of the model's 3 labels (astro, cook, "
                                         "sail); fix the label, or pass --allow-new-labels to learn it as a new class"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

TEST(Learner, RefusesAForeignNonEmptyDirectory) {
  const auto dir = trained_artifact("foreign");
  fs::create_directories(dir / "other");
  std::ofstream(dir / "other" / "notes.txt") << "mine";
  try {
    learn::Learner l((dir / "model").string(), (dir / "other").string(), options());
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("is not empty and holds no kiln learn state"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// The encoding cache changes no result: with it and without it (encoding_cache_bytes 0) the same
// stream gives the same predictions, updates, gate scores and promotions.
TEST(Learner, TheEncodingCacheChangesNoResult) {
  const auto dir = trained_artifact("cache");
  const auto stream = learn_test::topics(300, 12, {"astro", "cook", "sail", "music"});
  std::vector<std::vector<nlohmann::json>> runs;
  for (int64_t bytes : {learn::EncodingCache::kDefaultBytes, int64_t{0}}) {
    auto o = options();
    o.encoding_cache_bytes = bytes;
    const auto out = dir / ("learn_" + std::to_string(bytes));
    learn::Learner l((dir / "model").string(), out.string(), o);
    l.observe(feedback(stream));
    (void)l.finish();
    auto records = curve(out);
    for (auto& r : records) {
      r.erase("train_seconds");
      r.erase("featurize_seconds");
      r.erase("encodings");  // what the cache saved
    }
    runs.push_back(records);
  }
  ASSERT_GE(runs[0].size(), 4u);
  EXPECT_EQ(runs[0], runs[1]);
}
